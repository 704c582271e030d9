//! The CTranslate2 side: the types of a parsed `model.bin` ([`Ct2Model`],
//! [`Variable`], [`DType`]) and its bounds-checked parser ([`parse_ct2`]).

use super::GgmlError;

/// CTranslate2's storage types, by their code in `model.bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
}

impl DType {
    pub fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One named array of a CT2 model; `data` borrows from the file's bytes.
#[derive(Debug, Clone)]
pub struct Variable<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: &'a [u8],
}

impl Variable<'_> {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// A rank-0 integer (e.g. `encoder/num_heads`).
    pub(super) fn scalar_int(&self) -> Option<i64> {
        if !self.shape.is_empty() {
            return None;
        }
        let b = self.data;
        match self.dtype {
            DType::I8 => b.first().map(|&v| i64::from(v as i8)),
            DType::I16 => Some(i64::from(i16::from_le_bytes(b.get(..2)?.try_into().ok()?))),
            DType::I32 => Some(i64::from(i32::from_le_bytes(b.get(..4)?.try_into().ok()?))),
            _ => None,
        }
    }
}

/// A parsed CT2 `model.bin`.
#[derive(Debug)]
pub struct Ct2Model<'a> {
    pub version: u32,
    pub spec: String,
    pub revision: u32,
    pub variables: Vec<Variable<'a>>,
    /// `(alias, target)`: names that share another variable's data.
    pub aliases: Vec<(String, String)>,
}

impl<'a> Ct2Model<'a> {
    pub fn get(&self, name: &str) -> Option<&Variable<'a>> {
        self.variables.iter().find(|v| v.name == name)
    }
}

/// A little cursor that refuses to read past the end.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgmlError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                GgmlError::Truncated(format!(
                    "{what} needs {n} bytes at offset {}, the file has {}",
                    self.pos,
                    self.bytes.len()
                ))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, GgmlError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, GgmlError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32, GgmlError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// CT2 strings: u16 length, then that many bytes ending in a NUL.
    fn string(&mut self, what: &str) -> Result<String, GgmlError> {
        let n = usize::from(self.u16(what)?);
        let b = self.take(n, what)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec())
            .map_err(|_| GgmlError::BadHeader(format!("{what} is not UTF-8")))
    }
}

/// Parses a CT2 `model.bin` (binary versions 4 to 6: the ones with dtype codes).
pub fn parse_ct2(bytes: &[u8]) -> Result<Ct2Model<'_>, GgmlError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u32("binary version")?;
    if !(4..=6).contains(&version) {
        return Err(GgmlError::BadHeader(format!(
            "binary version {version}, expected 4 to 6"
        )));
    }
    let spec = r.string("spec name")?;
    let revision = r.u32("spec revision")?;
    let count = r.u32("variable count")? as usize;
    // Each variable needs at least 8 bytes (name length, rank, dtype, size):
    // a count the file cannot hold is rejected before the Vec is sized by it.
    if count > bytes.len() / 8 {
        return Err(GgmlError::Truncated(format!(
            "{count} variables cannot fit in {} bytes",
            bytes.len()
        )));
    }
    let mut variables = Vec::with_capacity(count);
    for _ in 0..count {
        let name = r.string("variable name")?;
        let rank = usize::from(r.u8("rank")?);
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(r.u32("dimension")? as usize);
        }
        let code = r.u8("dtype")?;
        let dtype = DType::from_code(code).ok_or_else(|| GgmlError::UnknownDtype {
            name: name.clone(),
            code,
        })?;
        let nbytes = r.u32("data size")? as usize;
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if expected != Some(nbytes) {
            return Err(GgmlError::BadHeader(format!(
                "{name}: shape {shape:?} of {dtype:?} does not match its {nbytes} data bytes"
            )));
        }
        let data = r.take(nbytes, &name)?;
        variables.push(Variable {
            name,
            shape,
            dtype,
            data,
        });
    }
    let mut aliases = Vec::new();
    if r.pos < bytes.len() {
        let n = r.u32("alias count")? as usize;
        if n > bytes.len() / 4 {
            return Err(GgmlError::Truncated(format!(
                "{n} aliases cannot fit in {} bytes",
                bytes.len()
            )));
        }
        for _ in 0..n {
            aliases.push((r.string("alias")?, r.string("alias target")?));
        }
    }
    Ok(Ct2Model {
        version,
        spec,
        revision,
        variables,
        aliases,
    })
}
