# mnemo — Deutsch. Jeder Schlüssel aus locales/en/mnemo.ftl muss hier stehen.
# Auszeichnung: nur <b>, <i> und <code> (Telegram-HTML); die Konsole entfernt sie.

## Antworten des Bots

start-welcome =
    👋 <b>Hallo, ich bin mnemo</b>, dein privates Gedächtnis.
    Schick mir einen Text und ich behalte ihn. Frag mit /recall, blättere mit /recent.
    /help zeigt alles, was ich kann.
start-paired = 🔐 Gekoppelt. Du bist jetzt Besitzer dieses mnemo; niemand sonst kann es nutzen.
help =
    <b>Was ich kann</b>
    • Jeder Text, den du schickst, wird als Notiz gespeichert; bearbeitest du die Nachricht, ändert sich die Notiz.
    • /recall <i>Wörter</i> — Notizen finden
    • /recent [<i>n</i>] — die neuesten Notizen
    • /forget <i>id</i> — eine Notiz löschen (oder /forget als Antwort auf sie)
    • /todos — offene Aufgaben aus deinen Notizen (✅ hakt eine ab)
    • /decisions — Entscheidungen aus deinen Notizen
    • /feedback — deine letzten 👍 👎 ⌛ Bewertungen von Suchtreffern
    Mit den Knöpfen unter Suchtreffern bringst du mir bei, was hilft: 👍 hilfreich, 👎 nicht hilfreich, ⌛ veraltet.
    • /stats — wie viel ich weiß
    • /digest [<i>day</i>|<i>week</i>] — eine Zusammenfassung dessen, was du festgehalten hast
    • /schedule [<i>on</i>|<i>off</i>] — Zeitpläne der Zusammenfassungen, nächste Termine, letzte Zustellungen
    • /tz <i>Europe/Berlin</i> — deine Zeitzone für Zusammenfassungen
    • /lang <i>Code</i> — Sprache der Antworten ({ $available })
note-saved = ✅ Gespeichert als <b>#{ $id }</b>.
note-priority = ❗ Sieht nach einer Priorität aus ({ $cue }).
note-repeat = ♻️ Schon gespeichert als <b>#{ $id }</b> ({ $date }): { $text }
note-updated = ✏️ Notiz <b>#{ $id }</b> aktualisiert.
note-empty = Nichts zu speichern: die Nachricht ist leer.
note-too-long = ⚠️ Nicht gespeichert: die Notiz hat { $len } Zeichen, erlaubt sind { $max }. Bitte teile sie auf.
unsupported-kind = ⚠️ { $kind }-Nachrichten kann ich noch nicht speichern; schick bitte Text. Es wurde nichts gespeichert.
recent-header = <b>Die neuesten { $count } Notizen</b>
recent-empty = Noch keine Notizen. Schick mir einen Text, um anzufangen.
note-line = <b>#{ $id }</b> <i>{ $date }</i> { $flag }{ $text }
recall-usage = Aufruf: /recall <i>gesuchte Wörter</i>
recall-header = <b>Beste Treffer für</b> „{ $query }“
recall-empty = Nichts gefunden für „{ $query }“.
recall-failed = ⚠️ Die Suche ist gerade fehlgeschlagen; bitte versuch es gleich noch einmal.
recall-loading = ⏳ Der Bedeutungsindex lädt nach dem Neustart noch; diese Treffer passen nur nach Wörtern.
recall-hit = { $n }. <b>#{ $id }</b> <i>{ $date } · { $source }</i> { $flag }{ $text }
recall-none = Nichts Passendes zu „{ $query }“ gefunden. Am nächsten kommt:
recall-more-hidden = { $count ->
    [one] Ein schwächerer Treffer nicht angezeigt.
   *[other] { $count } schwächere Treffer nicht angezeigt.
}
recall-more-header = <b>Schwächere Treffer für</b> „{ $query }“
btn-more = Mehr ({ $count })
press-more = { $count } weitere.
press-more-none = Mehr gibt es nicht.
flag-none = {""}
flag-priority = ❗{" "}
flag-outdated = ⌛ <i>veraltet</i>{" "}
todos-header = <b>Offene Aufgaben ({ $count })</b> — ✅ hakt eine ab
todos-empty = Keine offenen Aufgaben. Notizen wie „todo: Bank anrufen“ oder „Ich muss den Pass verlängern“ erscheinen hier.
todo-line = { $n }. { $text } <i>(#{ $id }, { $date })</i>
decisions-header = <b>Entscheidungen ({ $count })</b>
decisions-empty = Noch keine Entscheidungen. Notizen wie „Wir haben entschieden, den Zug zu nehmen“ erscheinen hier.
decision-line = • { $text } <i>(#{ $id }, { $date })</i>
feedback-header = <b>Deine letzten { $count } Bewertungen</b>
feedback-empty = Noch keine Bewertungen. Nutze die Knöpfe 👍 👎 ⌛ unter den Ergebnissen von /recall.
feedback-line = { $vote } <b>#{ $id }</b> { $text } — für „{ $query }“ <i>({ $date })</i>
feedback-no-query = jede Frage
vote-helpful = 👍
vote-not-helpful = 👎
vote-outdated = ⌛
btn-helpful = 👍 { $n }
btn-not-helpful = 👎 { $n }
btn-outdated = ⌛ { $n }
btn-undo = ↩ Rückgängig
btn-done = ✅ { $n }
press-helpful = 👍 Danke: #{ $id } steht bei ähnlichen Fragen künftig weiter oben.
press-not-helpful = 👎 Notiert: #{ $id } steht bei ähnlichen Fragen künftig weiter unten.
press-outdated = ⌛ Notiert: #{ $id } ist als veraltet markiert.
press-undone = ↩ Notiz #{ $id } entfernt.
press-done = ✅ Erledigt: { $text }
press-done-already = ✅ Das war schon erledigt.
press-used = Dieser Knopf wurde schon benutzt.
press-expired = Dieser Knopf ist abgelaufen. Frag noch einmal, dann gibt es neue Knöpfe.
press-invalid = Dieser Knopf ist (nicht mehr) gültig.
press-gone = Diese Notiz oder Aufgabe gibt es nicht mehr.
press-not-allowed = ⛔ Dies ist ein privates mnemo.
press-audio-gone = Die Aufnahme dieser Sprachnotiz ist nicht mehr gespeichert (siehe [voice] keep_audio_days).
press-retranscribing = 🔁 #{ $id } wird neu transkribiert…
btn-retranscribe = 🔁 Neu transkribieren
voice-saved = 🎙 Sprachnotiz gespeichert als <b>#{ $id }</b> ({ $duration }):
voice-retranscribed = 🔁 Sprachnotiz <b>#{ $id }</b> neu transkribiert:
voice-transcript = <i>{ $text }</i>
voice-low-confidence = ⚠️ Geringe Sicherheit ({ $pct } %): die Abschrift kann falsch sein.
voice-doubtful = ❔ Unsicher bei: { $words }
voice-too-big = ⚠️ Die Datei ist { $size } MB groß; Bots können höchstens { $max } MB herunterladen. Nichts wurde gespeichert.
voice-too-long = ⚠️ Die Sprachnotiz ist { $duration } lang; erlaubt sind { $max }. Nichts wurde gespeichert.
voice-failed = ⚠️ Ich konnte diese Sprachnotiz nicht transkribieren.
voice-kept = Die Aufnahme ist sicher gespeichert; ich versuche es nach einem Neustart oder mit <code>mnemo retry-voice</code> erneut.
voice-err-no-speech = Ich habe darin keine Sprache gehört.
voice-err-model = Das Sprachmodell ist nicht verfügbar: { $detail }
voice-err-audio = Die Aufnahme lässt sich nicht dekodieren: { $detail }
voice-err-download = Die Datei konnte nicht geladen werden: { $detail }
voice-err-download-gave-up = Das Herunterladen ist wiederholt gescheitert ({ $detail }), ich habe aufgehört. Schick die Sprachnachricht noch einmal, oder der Besitzer startet <code>mnemo retry-voice</code>.
voice-err-failed = Die Transkription ist fehlgeschlagen: { $detail }
forget-usage = Aufruf: /forget <i>id</i>, oder /forget als Antwort auf die Notiz.
forget-done = 🗑 Notiz <b>#{ $id }</b> vergessen.
forget-not-found = In diesem Chat gibt es keine Notiz #{ $id }.
stats =
    <b>Gedächtnis</b>
    Notizen in diesem Chat: { $chat }
    Notizen insgesamt: { $total }
    Mit Embedding: { $embedded } (wartend: { $pending })
    Vektorindex: { $index } · Modell { $model }
    Bewertungen: 👍 { $helpful } · 👎 { $not_helpful } · ⌛ { $outdated }
    Aufgaben: { $todos } offen, { $done } erledigt · Entscheidungen: { $decisions }
    Größe der Datenbank: { $size }
stats-chat =
    <b>Gedächtnis dieser Gruppe</b>
    Notizen: { $chat }
    Offene Aufgaben: { $todos } · Entscheidungen: { $decisions }
stats-llm = <b>Zusammenfassungen (LLM)</b>: heute { $today_calls } Aufrufe, { $today_tokens } Tokens, { $today_cost } · diesen Monat { $month_tokens } Tokens, { $month_cost }
stats-llm-cost-unknown = Kosten unbekannt (ein Modell hat keinen Preis in [llm.prices])
lang-set = Antworten kommen jetzt auf Deutsch.
lang-usage = Aufruf: /lang <i>Code</i>. Verfügbar: { $available }. Aktuell: { $current }.
unknown-command = Unbekannter Befehl { $command }. /help zeigt die Befehle.
access-denied = ⛔ Dies ist ein privates mnemo. Deine Benutzer-ID ist <code>{ $user }</code>; bitte den Besitzer, sie freizugeben.
storage-error = ⚠️ Das konnte ich gerade nicht speichern (Speicherproblem). Es ist nicht verloren: ich verarbeite es erneut, sobald der Speicher wieder geht.
source-telegram = Telegram
source-console = Konsole
source-import = Import
source-voice = Sprachnotiz

## Befehlsbeschreibungen für das Telegram-Menü (setMyCommands)

cmd-start = Starten und koppeln
cmd-help = Was mnemo kann
cmd-recent = Neueste Notizen
cmd-recall = Notizen finden
cmd-forget = Eine Notiz löschen
cmd-todos = Offene Aufgaben
cmd-decisions = Entscheidungen
cmd-feedback = Letzte Bewertungen
cmd-stats = Statistik
cmd-digest = Zusammenfassung des Festgehaltenen
cmd-schedule = Zeitpläne der Zusammenfassungen
cmd-tz = Zeitzone für Zusammenfassungen
cmd-lang = Sprache der Antworten

## Arten nicht unterstützter Nachrichten

kind-sticker = Sticker
kind-photo = Foto
kind-video = Video
kind-document = Dokument
kind-audio = Audio
kind-voice = Sprach
kind-location = Standort
kind-contact = Kontakt
kind-poll = Umfrage
kind-other = Diese Art von

## Konsole und Kommandozeile

console-banner = mnemo-Konsole — tippe eine Notiz oder /help. Strg-D beendet. Daten: { $dir }
cli-stats =
    Notizen: { $memories }
    Chats: { $chats }
    Mit Embedding: { $embedded } (wartend { $pending }), Index { $index }, Modell { $model }
    Bewertungen: { $helpful } hilfreich, { $not_helpful } nicht hilfreich, { $outdated } veraltet
    Aufgaben: { $todos } offen, { $done } erledigt; Entscheidungen: { $decisions }
    Ausstehende Antworten: { $outbox }
    Datenbank: { $path } ({ $size })
cli-recall-explain =     lexikalisch { $lex } (bm25 { $bm25 }) + Vektor { $vec } (Kosinus { $cos }) + Aktualität { $rec } + Bewertungen { $fb }
cli-recall-explain-more =     + Sprecher { $spk } + damals geschrieben { $date } + nennt eine Zeit { $when } + fragt { $ask } + Sitzung { $sit }; Relevanz { $rel } (Cross-Encoder { $xe })
cli-key-rotated = neuer Knopf-Schlüssel { $fingerprint }; der bisherige bleibt gültig bis { $until }
cli-models-current = Modelle sind aktuell in { $dir }
cli-models-fetched = { $files } nach { $dir } geladen
cli-models-ok = Modelle in Ordnung in { $dir }
cli-reindexed = { $notes } Notizen neu indiziert ({ $embedded } mit Embedding) in { $secs } s
cli-imported = { $imported } Nachrichten aus { $chats } Chats importiert ({ $skipped } übersprungen, { $dups } schon vorhanden, { $embedded } mit Embedding) in { $secs } s
cli-stats-damaged = { $count } beschädigte Einträge werden aufbewahrt, aber übersprungen; siehe `mnemo repair`
cli-repair-none = Keine beschädigten Einträge.
cli-repair-record = beschädigt: { $table } { $key } ({ $error })
cli-repair-exported = { $count } beschädigte Einträge nach { $path } geschrieben
cli-repair-removed = { $count } beschädigte Einträge entfernt
cli-imported-split = { $messages } lange Nachricht(en) als { $parts } verknüpfte Teile gespeichert
cli-semantic-off = Warnung: semantische Suche ist aus: { $reason }
model-none = keins
cli-recall-empty = Keine Treffer.
cli-recall-hit = #{ $id } [{ $date }, Chat { $chat }, { $source }, Wert { $score }] { $flag }{ $text }
cli-recall-none-relevant = Nichts Passendes gefunden; am nächsten kommt:
cli-recall-relevant = {""}
cli-recall-closest = (am nächsten, kein Treffer){" "}
doctor-ok = ok    { $check }: { $detail }
doctor-fail = FEHLER { $check }: { $detail }
doctor-warn = warn  { $check }: { $detail }
doctor-skipped = skip  { $check }: { $detail }
doctor-summary-ok = mnemo ist gesund.
doctor-summary-fail = mnemo ist nicht gesund: { $count } Prüfung(en) fehlgeschlagen.
cli-transcribed = ({ $secs } s Audio in { $took } s, { $rtf }× Echtzeit, Sicherheit { $pct } %)
cli-doubtful = unsicher bei: { $words }
cli-voice-saved = gespeichert als Notiz #{ $id }
cli-voice-retried = Sprachnotizen: { $requeued } erneut eingereiht, { $stored } transkribiert und gespeichert, { $failed } wieder fehlgeschlagen, { $waiting } warten auf den Download (braucht mnemo serve)

## mnemo jobs
cli-job = { $name } ({ $schedule }): zuletzt { $last } — { $outcome }; nächster Lauf { $next }
cli-job-never = nie
cli-job-off = aus
cli-schedule = Chat { $chat } { $name } ({ $cron }, { $tz }): nächster Lauf { $next }
cli-ledger = Chat { $chat } { $schedule } { $slot }: { $state }{ $late }

## Zusammenfassungen

digest-header = 🗞 <b>Deine { $period }</b> <i>{ $from } – { $to }</i>{ $late }
digest-period-hour = Stunde
digest-period-day = Tageszusammenfassung
digest-period-week = Wochenzusammenfassung
digest-late = {" "}<i>(verspätet: mnemo lief zu dem Zeitpunkt nicht)</i>
digest-summary = { $text }
digest-llm-unavailable = <i>Der Zusammenfassungsdienst war nicht erreichbar; hier die einfache Übersicht.</i>
digest-llm-limit = <i>Das heutige Budget für Zusammenfassungen ist aufgebraucht; hier die einfache Übersicht.</i>
digest-priorities = <b>❗ Prioritäten ({ $count })</b>
digest-decisions = <b>⚖️ Entscheidungen ({ $count })</b>
digest-todos = <b>☐ Offene Aufgaben ({ $count })</b> — ✅ hakt eine ab
digest-voice = <b>🎙 Sprachnotizen ({ $count })</b>
digest-entry = • { $text } <i>(#{ $id })</i>
digest-todo = { $n }. { $text } <i>(#{ $id })</i>
digest-other = <b>📝 Außerdem festgehalten ({ $count })</b>
digest-themes = <b>🧭 Hauptthemen</b>
digest-theme = • { $text } <i>(#{ $id }, { $count } Notizen)</i>
digest-more = <i>… und { $count } weitere</i>
digest-counts = <i>{ $notes } neue Notizen · { $voice } Sprachnotizen · { $todos } offene Aufgaben insgesamt · { $decisions } Entscheidungen</i>
digest-usage = Verwendung: /digest [day|week|hour]
digest-empty = Nichts Neues im Zeitraum ({ $period }).
schedule-header = <b>Zusammenfassungen</b> in { $tz }: { $state }
schedule-state-on = an
schedule-state-off = aus (/schedule on schaltet sie wieder ein)
schedule-line = • { $period }: <code>{ $cron }</code>, nächste { $next }
schedule-next-none = —
schedule-ledger-header = <b>Letzte Zustellungen</b>
schedule-ledger-line = • { $schedule } { $slot }: { $state }{ $late }
schedule-on = 🔔 Geplante Zusammenfassungen sind an.
schedule-off = 🔕 Geplante Zusammenfassungen sind aus.
schedule-usage = Verwendung: /schedule, /schedule on oder /schedule off
slot-planned = eingereiht
slot-sending = wird gesendet
slot-sent = gesendet
slot-failed = fehlgeschlagen
slot-skipped = nichts Neues
slot-missed = verpasst
slot-uncertain = ungewiss (kam vielleicht an; wird nicht erneut gesendet)
tz-current = Deine Zeitzone: <b>{ $tz }</b>. Ändern mit /tz <i>Europe/Berlin</i>.
tz-set = 🕰 Zeitzone ist jetzt <b>{ $tz }</b> (dort ist es gerade { $time }).
tz-unknown = ⚠️ „{ $tz }“ kenne ich nicht als Zeitzone. Nimm einen IANA-Namen wie Europe/Berlin oder America/New_York.
cli-backup-written = Sicherung geschrieben nach { $archive } ({ $size }): { $notes } Notizen, { $votes } Bewertungen, { $todos } Aufgaben, { $audio } Audiodateien; geschrieben und geprüft in { $secs } s
cli-backup-sha256 = sha256 { $sha256 }
cli-backup-verified = { $archive } ist in Ordnung: { $files } Dateien vom { $created } wiederhergestellt und geprüft: { $notes } Notizen, { $votes } Bewertungen, { $todos } Aufgaben, { $audio } Audiodateien
cli-backup-phase-snapshot = kopiere die Datenbank
cli-backup-phase-pack = packe
cli-backup-phase-verify = prüfe
cli-restored = { $archive } wiederhergestellt nach { $dir }: { $notes } Notizen, { $votes } Bewertungen, { $todos } Aufgaben, { $audio } Audiodateien
cli-restored-aside = die Daten, die dort lagen, sind in { $aside } aufbewahrt

## Health: checks, alerts, /health, /alerts
cmd-health = Wie es mnemo geht (Admin)
cmd-alerts = Letzte Zustandsmeldungen (Admin)
health-icon-ok = ✅
health-icon-warn = ⚠️
health-icon-critical = 🔴
health-icon-na = ⚪
health-check-disk = Datenplatte
health-check-database = Datenbank
health-check-index = Suchindizes
health-check-models = Modelldateien
health-check-telegram = Telegram
health-check-queues = Warteschlangen
health-check-transcription = Transkription
health-check-memory = Arbeitsspeicher
health-check-backup = Sicherungen
health-check-digests = Zusammenfassungen
health-phase-ok = in Ordnung
health-phase-pending = wird beobachtet
health-phase-firing = meldet
health-phase-acked = bestätigt
health-phase-resolving = erholt sich
health-phase-flapping = schwankt
health-event-firing = Warnung
health-event-escalated = jetzt kritisch
health-event-repeat = weiterhin gestört
health-event-recovered = wieder in Ordnung
health-event-flapping = schwankt
health-needs-serve = {"   "}braucht den laufenden Bot (mnemo serve)
health-check-failed = {"   "}die Prüfung selbst schlug fehl: { $error }
health-disk = {"   "}{ $free_mb } MB frei ({ $percent } %)
health-disk-refused = {"   "}ein Schreibvorgang wurde abgewiesen: die Platte ist voll ({ $free_mb } MB frei)
health-database-ok = {"   "}öffnet und schreibt ({ $mb } MB)
health-database-failed = {"   "}ein Commit schlug fehl: { $error }
health-index = {"   "}{ $notes } Notizen: { $lexical } im Wortindex · { $stored } Einbettungen gespeichert, { $vectors } im Speicher
health-models-ok = {"   "}vorhanden, Prüfsummen stimmen
health-models-embed = {"   "}Einbettungsmodell: { $error } — Suche nur nach Wörtern; `mnemo models fetch` ausführen
health-models-speech = {"   "}Sprachmodell: { $error } — Sprachnotizen warten; `mnemo models fetch` ausführen
health-models-rerank = {"   "}Reranking-Modell: { $error } — die Suche in importierten Chats trennt Treffer schlechter von Beinahe-Treffern; `mnemo models fetch` ausführen
health-telegram-off = {"   "}nicht in Gebrauch (nur Konsole)
health-telegram = {"   "}letzte Antwort vor { $age } s · Fehler in 10 min: { $server } 5xx, { $throttled } 429, { $network } Netz
health-telegram-never = {"   "}keine Antwort seit dem Start ({ $age } s) · Fehler in 10 min: { $server } 5xx, { $throttled } 429, { $network } Netz
health-queues = {"   "}Einbettung: { $embed } wartend (Kopf steht seit { $embed_age } s) · Sprache: { $voice } wartend (älteste { $voice_age } s)
health-transcription = {"   "}{ $failed } Sprachnotizen in der letzten Stunde fehlgeschlagen
health-transcription-model = {"   "}{ $failed } Sprachnotizen in der letzten Stunde fehlgeschlagen: das Sprachmodell fehlt oder ist beschädigt (`mnemo models fetch` ausführen)
health-memory = {"   "}{ $mb } MB belegt (Grenze { $limit } MB)
health-backup-off = {"   "}die Sicherung ist ausgeschaltet
health-backup = {"   "}letzte geprüfte Sicherung vor { $hours } h
health-backup-failed = {"   "}die letzte Sicherung ließ sich nicht prüfen (letzte gute vor { $hours } h)
health-backup-none = {"   "}noch keine geprüfte Sicherung
health-digests = {"   "}letzte 24 h: { $missed } verpasst, { $failed } fehlgeschlagen oder unsicher
health-alert-header = 🩺 <b>mnemo-Zustand</b> ({ $count })
health-firing = { $icon } <b>{ $check }</b>: { $event }
health-recovered = ✅ <b>{ $check }</b> wieder in Ordnung (Dauer { $lasted })
health-flapping = 〰️ <b>{ $check }</b> schwankt ständig; keine weiteren Meldungen, bis es sich beruhigt
health-storage-held = {"   "}mnemo kann gerade nichts speichern. Das Abholen von Telegram ruht, nichts geht verloren: deine Nachrichten warten bei Telegram und werden verarbeitet, sobald es wieder geht. Du bekommst dann Bescheid.
health-storage-back = {"   "}mnemo speichert wieder: das Abholen läuft, und die Nachrichten, die gewartet haben, werden jetzt verarbeitet.
btn-health-snooze = 🔕 1 h · { $check }
btn-health-ack = ✅ { $check }
btn-health-details = 🔍 { $check }
health-none-yet = Noch keine Zustandsprüfung gelaufen (sie laufen jede Minute, solange der Bot läuft).
health-header = { $icon } <b>mnemo-Zustand</b> (geprüft { $at } UTC)
health-line = { $icon } <b>{ $check }</b> — { $phase }
alerts-empty = Bisher keine Zustandsmeldungen.
alerts-header = <b>Letzte { $count } Zustandsmeldungen</b>
alerts-line = { $at } { $icon } { $check }: { $event }
health-details-header = 🔍 <b>{ $check }</b> — { $phase }. Letzte Messungen:
health-details-line = { $at } { $icon }
press-health-details = Details unten.
press-health-recovered = { $check } ist schon wieder in Ordnung.
press-health-acked = ✅ Bestätigt: keine Wiederholung, bis { $check } wieder in Ordnung ist.
press-health-snoozed = 🔕 { $check }: eine Stunde keine Wiederholung.
digest-health-ok = ✅ mnemo selbst: alle Prüfungen in Ordnung.
digest-health-bad = ⚠️ mnemo selbst: { $count } Prüfungen brauchen Aufmerksamkeit — /health
