# mnemo — English. Every user-facing string lives here and in the other locales.
# Markup: only <b>, <i> and <code> (Telegram HTML); the console strips them.

## Bot replies

start-welcome =
    👋 <b>Hi, I am mnemo</b>, your private memory.
    Send me any text and I keep it. Ask with /recall, browse with /recent.
    /help lists everything I can do.
start-paired = 🔐 Paired. You are now the owner of this mnemo; nobody else can use it.
help =
    <b>What I do</b>
    • Any text you send is saved as a note; editing the message updates the note.
    • /recall <i>words</i> — find notes
    • /recent [<i>n</i>] — the latest notes
    • /forget <i>id</i> — delete a note (or reply /forget to it)
    • /stats — how much I remember
    • /lang <i>code</i> — reply language ({ $available })
note-saved = ✅ Saved as <b>#{ $id }</b>.
note-duplicate = ♻️ You saved this before as <b>#{ $id }</b> ({ $date }), so #{ $new } was not kept.
note-updated = ✏️ Note <b>#{ $id }</b> updated.
note-empty = Nothing to save: the message is empty.
note-too-long = ⚠️ Not saved: the note has { $len } characters, the limit is { $max }. Please split it.
unsupported-kind = ⚠️ I cannot store { $kind } messages yet; send text instead. Nothing was saved.
recent-header = <b>Latest { $count } notes</b>
recent-empty = No notes yet. Send me some text to start.
note-line = <b>#{ $id }</b> <i>{ $date }</i> { $text }
recall-usage = Usage: /recall <i>words to look for</i>
recall-header = <b>Best matches for</b> “{ $query }”
recall-empty = Nothing found for “{ $query }”.
recall-failed = ⚠️ Search failed just now; please try again in a moment.
recall-hit = <b>#{ $id }</b> <i>{ $date } · { $source }</i> { $text }
forget-usage = Usage: /forget <i>id</i>, or reply /forget to the note.
forget-done = 🗑 Note <b>#{ $id }</b> forgotten.
forget-not-found = There is no note #{ $id } in this chat.
stats =
    <b>Memory</b>
    Notes in this chat: { $chat }
    Notes in total: { $total }
    With embeddings: { $embedded } (waiting: { $pending })
    Vector index: { $index } · model { $model }
    Database size: { $size }
lang-set = Replies are now in English.
lang-usage = Usage: /lang <i>code</i>. Available: { $available }. Current: { $current }.
unknown-command = Unknown command { $command }. /help lists the commands.
access-denied = ⛔ This is a private mnemo. Your user id is <code>{ $user }</code>; ask the owner to allow it.
storage-error = ⚠️ I could not save that right now (storage problem). It was not lost: I will process it again once storage works.
source-telegram = telegram
source-console = console
source-import = import

## Command descriptions for the Telegram menu (setMyCommands)

cmd-start = Start and pair
cmd-help = What mnemo can do
cmd-recent = Latest notes
cmd-recall = Find notes
cmd-forget = Delete a note
cmd-stats = Memory statistics
cmd-lang = Reply language

## Kinds of unsupported messages

kind-sticker = sticker
kind-photo = photo
kind-video = video
kind-document = document
kind-audio = audio
kind-voice = voice
kind-location = location
kind-contact = contact
kind-poll = poll
kind-other = this kind of

## Console and command line

console-banner = mnemo console — type a note, or /help. Ctrl-D quits. Data: { $dir }
cli-stats =
    Notes: { $memories }
    Chats: { $chats }
    Embedded: { $embedded } (pending { $pending }), index { $index }, model { $model }
    Pending outgoing replies: { $outbox }
    Database: { $path } ({ $size })
cli-recall-explain =     lexical { $lex } (bm25 { $bm25 }) + vector { $vec } (cosine { $cos }) + recency { $rec }
cli-models-current = models are up to date in { $dir }
cli-models-fetched = fetched { $files } into { $dir }
cli-models-ok = models ok in { $dir }
cli-reindexed = reindexed { $notes } notes ({ $embedded } embedded) in { $secs } s
cli-imported = imported { $imported } messages from { $chats } chats ({ $skipped } skipped, { $dups } already present, { $embedded } embedded) in { $secs } s
cli-semantic-off = warning: semantic recall is off: { $reason }
model-none = none
cli-recall-empty = No matches.
cli-recall-hit = #{ $id } [{ $date }, chat { $chat }, { $source }, score { $score }] { $text }
doctor-ok = ok    { $check }: { $detail }
doctor-fail = FAIL  { $check }: { $detail }
doctor-warn = warn  { $check }: { $detail }
doctor-summary-ok = mnemo is healthy.
doctor-summary-fail = mnemo is not healthy: { $count } check(s) failed.
