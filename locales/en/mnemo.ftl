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
    • /todos — open to-dos found in your notes (✅ ticks one off)
    • /decisions — decisions found in your notes
    • /feedback — your latest 👍 👎 ⌛ votes on search results
    Buttons under search results teach me what helps: 👍 helpful, 👎 not helpful, ⌛ outdated.
    • /stats — how much I remember
    • /digest [<i>day</i>|<i>week</i>] — a digest of what you captured
    • /schedule [<i>on</i>|<i>off</i>] — digest schedules, next runs, last deliveries
    • /tz <i>Europe/Berlin</i> — your time zone for digests
    • /lang <i>code</i> — reply language ({ $available })
note-saved = ✅ Saved as <b>#{ $id }</b>.
note-priority = ❗ Looks like a priority ({ $cue }).
note-repeat = ♻️ Already saved as <b>#{ $id }</b> ({ $date }): { $text }
note-updated = ✏️ Note <b>#{ $id }</b> updated.
note-empty = Nothing to save: the message is empty.
note-too-long = ⚠️ Not saved: the note has { $len } characters, the limit is { $max }. Please split it.
unsupported-kind = ⚠️ I cannot store { $kind } messages yet; send text instead. Nothing was saved.
recent-header = <b>Latest { $count } notes</b>
recent-empty = No notes yet. Send me some text to start.
note-line = <b>#{ $id }</b> <i>{ $date }</i> { $flag }{ $text }
recall-usage = Usage: /recall <i>words to look for</i>
recall-header = <b>Best matches for</b> “{ $query }”
recall-empty = Nothing found for “{ $query }”.
recall-failed = ⚠️ Search failed just now; please try again in a moment.
recall-loading = ⏳ The meaning index is still loading after a restart; these results match your words only.
recall-hit = { $n }. <b>#{ $id }</b> <i>{ $date } · { $source }</i> { $flag }{ $text }
recall-none = Nothing matching “{ $query }” was found. The closest note:
recall-more-hidden = { $count ->
    [one] One weaker match not shown.
   *[other] { $count } weaker matches not shown.
}
recall-more-header = <b>Weaker matches for</b> “{ $query }”
btn-more = More ({ $count })
press-more = Showing { $count } more.
press-more-none = Nothing more to show.
flag-none = {""}
flag-priority = ❗{" "}
flag-outdated = ⌛ <i>outdated</i>{" "}
todos-header = <b>Open to-dos ({ $count })</b> — ✅ ticks one off
todos-empty = No open to-dos. Notes like “todo: call the bank” or “I need to renew my passport” show up here.
todo-line = { $n }. { $text } <i>(#{ $id }, { $date })</i>
decisions-header = <b>Decisions ({ $count })</b>
decisions-empty = No decisions yet. Notes like “We decided to take the train” show up here.
decision-line = • { $text } <i>(#{ $id }, { $date })</i>
feedback-header = <b>Your latest { $count } votes</b>
feedback-empty = No votes yet. Use the 👍 👎 ⌛ buttons under /recall results.
feedback-line = { $vote } <b>#{ $id }</b> { $text } — for “{ $query }” <i>({ $date })</i>
feedback-no-query = any question
vote-helpful = 👍
vote-not-helpful = 👎
vote-outdated = ⌛
btn-helpful = 👍 { $n }
btn-not-helpful = 👎 { $n }
btn-outdated = ⌛ { $n }
btn-undo = ↩ Undo
btn-done = ✅ { $n }
press-helpful = 👍 Thanks: #{ $id } will rank higher for questions like this.
press-not-helpful = 👎 Noted: #{ $id } will rank lower for questions like this.
press-outdated = ⌛ Noted: #{ $id } is marked outdated.
press-undone = ↩ Note #{ $id } removed.
press-done = ✅ Done: { $text }
press-done-already = ✅ That one was already done.
press-used = This button was already used.
press-expired = This button has expired. Ask again for fresh buttons.
press-invalid = This button is not valid (anymore).
press-gone = That note or item no longer exists.
press-not-allowed = ⛔ This is a private mnemo.
press-audio-gone = The audio of that voice note is no longer kept (see [voice] keep_audio_days).
press-retranscribing = 🔁 Transcribing #{ $id } again…
btn-retranscribe = 🔁 Re-transcribe
voice-saved = 🎙 Voice note saved as <b>#{ $id }</b> ({ $duration }):
voice-retranscribed = 🔁 Voice note <b>#{ $id }</b> transcribed again:
voice-transcript = <i>{ $text }</i>
voice-low-confidence = ⚠️ Low confidence ({ $pct }%): the transcript may be wrong.
voice-doubtful = ❔ Unsure about: { $words }
voice-too-big = ⚠️ That file is { $size } MB; bots can only download up to { $max } MB. Nothing was saved.
voice-too-long = ⚠️ That voice note is { $duration } long; the limit is { $max }. Nothing was saved.
voice-failed = ⚠️ I could not transcribe that voice note.
voice-kept = The audio is kept safe; I will try again after a restart or on <code>mnemo retry-voice</code>.
voice-err-no-speech = I heard no speech in it.
voice-err-model = The speech model is not available: { $detail }
voice-err-audio = The audio cannot be decoded: { $detail }
voice-err-download = The file could not be downloaded: { $detail }
voice-err-download-gave-up = The download kept failing ({ $detail }), so I stopped trying. Send the voice note again, or the owner can run <code>mnemo retry-voice</code>.
voice-err-failed = Transcription failed: { $detail }
forget-usage = Usage: /forget <i>id</i>, or reply /forget to the note.
forget-done = 🗑 Note <b>#{ $id }</b> forgotten.
forget-not-found = There is no note #{ $id } in this chat.
stats =
    <b>Memory</b>
    Notes in this chat: { $chat }
    Notes in total: { $total }
    With embeddings: { $embedded } (waiting: { $pending })
    Vector index: { $index } · model { $model }
    Feedback: 👍 { $helpful } · 👎 { $not_helpful } · ⌛ { $outdated }
    To-dos: { $todos } open, { $done } done · decisions: { $decisions }
    Database size: { $size }
stats-chat =
    <b>Memory of this group</b>
    Notes: { $chat }
    To-dos open: { $todos } · decisions: { $decisions }
stats-llm = <b>Summaries (LLM)</b>: today { $today_calls } calls, { $today_tokens } tokens, { $today_cost } · this month { $month_tokens } tokens, { $month_cost }
stats-llm-cost-unknown = cost unknown (a model has no price in [llm.prices])
lang-set = Replies are now in English.
lang-usage = Usage: /lang <i>code</i>. Available: { $available }. Current: { $current }.
unknown-command = Unknown command { $command }. /help lists the commands.
access-denied = ⛔ This is a private mnemo. Your user id is <code>{ $user }</code>; ask the owner to allow it.
storage-error = ⚠️ I could not save that right now (storage problem). It was not lost: I will process it again once storage works.
source-telegram = telegram
source-console = console
source-import = import
source-voice = voice

## Command descriptions for the Telegram menu (setMyCommands)

cmd-start = Start and pair
cmd-help = What mnemo can do
cmd-recent = Latest notes
cmd-recall = Find notes
cmd-forget = Delete a note
cmd-todos = Open to-dos
cmd-decisions = Decisions
cmd-feedback = Latest votes on results
cmd-stats = Memory statistics
cmd-digest = Digest of what you captured
cmd-schedule = Digest schedules
cmd-tz = Time zone for digests
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
    Feedback: { $helpful } helpful, { $not_helpful } not helpful, { $outdated } outdated
    To-dos: { $todos } open, { $done } done; decisions: { $decisions }
    Pending outgoing replies: { $outbox }
    Database: { $path } ({ $size })
cli-recall-explain =     lexical { $lex } (bm25 { $bm25 }) + vector { $vec } (cosine { $cos }) + recency { $rec } + feedback { $fb }
cli-recall-explain-more =     + speaker { $spk } + written then { $date } + names a time { $when } + asks { $ask } + sitting { $sit }; relevance { $rel } (cross-encoder { $xe })
cli-key-rotated = new button key { $fingerprint }; the previous key stays valid until { $until }
cli-models-current = models are up to date in { $dir }
cli-models-fetched = fetched { $files } into { $dir }
cli-models-ok = models ok in { $dir }
cli-reindexed = reindexed { $notes } notes ({ $embedded } embedded) in { $secs } s
cli-imported = imported { $imported } messages from { $chats } chats ({ $skipped } skipped, { $dups } already present, { $embedded } embedded) in { $secs } s
cli-stats-damaged = { $count } damaged record(s) are kept but skipped; see `mnemo repair`
cli-repair-none = No damaged records.
cli-repair-record = damaged: { $table } { $key } ({ $error })
cli-repair-exported = wrote { $count } damaged record(s) to { $path }
cli-repair-removed = removed { $count } damaged record(s)
cli-imported-split = { $messages } long message(s) were stored as { $parts } linked parts
cli-semantic-off = warning: semantic recall is off: { $reason }
model-none = none
cli-recall-empty = No matches.
cli-recall-hit = #{ $id } [{ $date }, chat { $chat }, { $source }, score { $score }] { $flag }{ $text }
cli-recall-none-relevant = Nothing matching found; the closest:
cli-recall-relevant = {""}
cli-recall-closest = (closest, not a match){" "}
doctor-ok = ok    { $check }: { $detail }
doctor-fail = FAIL  { $check }: { $detail }
doctor-warn = warn  { $check }: { $detail }
doctor-skipped = skip  { $check }: { $detail }
doctor-summary-ok = mnemo is healthy.
doctor-summary-fail = mnemo is not healthy: { $count } check(s) failed.
cli-transcribed = ({ $secs } s of audio in { $took } s, { $rtf }× real time, confidence { $pct }%)
cli-doubtful = unsure about: { $words }
cli-voice-saved = saved as note #{ $id }
cli-voice-retried = voice notes: { $requeued } requeued, { $stored } transcribed and stored, { $failed } failed again, { $waiting } waiting for download (needs mnemo serve)

## mnemo jobs
cli-job = { $name } ({ $schedule }): last run { $last } — { $outcome }; next { $next }
cli-job-never = never
cli-job-off = off
cli-schedule = chat { $chat } { $name } ({ $cron }, { $tz }): next { $next }
cli-ledger = chat { $chat } { $schedule } { $slot }: { $state }{ $late }

## Digests

digest-header = 🗞 <b>Your { $period }</b> <i>{ $from } – { $to }</i>{ $late }
digest-period-hour = hour
digest-period-day = day
digest-period-week = week
digest-late = {" "}<i>(late: mnemo was not running at the time)</i>
digest-summary = { $text }
digest-llm-unavailable = <i>The summary service was unavailable; here is the plain digest.</i>
digest-llm-limit = <i>Today's summary budget is used up; here is the plain digest.</i>
digest-priorities = <b>❗ Priorities ({ $count })</b>
digest-decisions = <b>⚖️ Decisions ({ $count })</b>
digest-todos = <b>☐ Open to-dos ({ $count })</b> — ✅ ticks one off
digest-voice = <b>🎙 Voice notes ({ $count })</b>
digest-entry = • { $text } <i>(#{ $id })</i>
digest-todo = { $n }. { $text } <i>(#{ $id })</i>
digest-other = <b>📝 Also captured ({ $count })</b>
digest-themes = <b>🧭 Main themes</b>
digest-theme = • { $text } <i>(#{ $id }, { $count } notes)</i>
digest-more = <i>… and { $count } more</i>
digest-counts = <i>{ $notes } new notes · { $voice } voice · { $todos } open to-dos in all · { $decisions } decisions</i>
digest-usage = Usage: /digest [day|week|hour]
digest-empty = Nothing new in the last { $period }.
schedule-header = <b>Digests</b> in { $tz }: { $state }
schedule-state-on = on
schedule-state-off = off (/schedule on turns them back on)
schedule-line = • { $period }: <code>{ $cron }</code>, next { $next }
schedule-next-none = —
schedule-ledger-header = <b>Last deliveries</b>
schedule-ledger-line = • { $schedule } { $slot }: { $state }{ $late }
schedule-on = 🔔 Scheduled digests are on.
schedule-off = 🔕 Scheduled digests are off.
schedule-usage = Usage: /schedule, /schedule on or /schedule off
slot-planned = queued
slot-sending = sending
slot-sent = sent
slot-failed = failed
slot-skipped = nothing new
slot-missed = missed
slot-uncertain = uncertain (may have arrived; not sent again)
tz-current = Your time zone: <b>{ $tz }</b>. Change it with /tz <i>Europe/Berlin</i>.
tz-set = 🕰 Time zone set to <b>{ $tz }</b> (it is { $time } there now).
tz-unknown = ⚠️ “{ $tz }” is not a time zone I know. Use an IANA name such as Europe/Berlin or America/New_York.
cli-backup-written = backup written to { $archive } ({ $size }): { $notes } notes, { $votes } votes, { $todos } to-dos, { $audio } audio files; written and verified in { $secs } s
cli-backup-sha256 = sha256 { $sha256 }
cli-backup-verified = { $archive } verifies: restored and checked { $files } files from { $created }: { $notes } notes, { $votes } votes, { $todos } to-dos, { $audio } audio files
cli-backup-phase-snapshot = copying the database
cli-backup-phase-pack = packing
cli-backup-phase-verify = verifying
cli-restored = restored { $archive } into { $dir }: { $notes } notes, { $votes } votes, { $todos } to-dos, { $audio } audio files
cli-restored-aside = the data that was there is kept in { $aside }

## Health: checks, alerts, /health, /alerts
cmd-health = How mnemo is doing (admin)
cmd-alerts = Recent health alerts (admin)
health-icon-ok = ✅
health-icon-warn = ⚠️
health-icon-critical = 🔴
health-icon-na = ⚪
health-check-disk = Data disk
health-check-database = Database
health-check-index = Search indexes
health-check-models = Model files
health-check-telegram = Telegram
health-check-queues = Queues
health-check-transcription = Transcription
health-check-memory = Memory
health-check-backup = Backups
health-check-digests = Digests
health-phase-ok = ok
health-phase-pending = watching
health-phase-firing = alerting
health-phase-acked = acknowledged
health-phase-resolving = recovering
health-phase-flapping = flapping
health-event-firing = alert
health-event-escalated = now critical
health-event-repeat = still failing
health-event-recovered = recovered
health-event-flapping = flapping
health-needs-serve = {"   "}needs the running bot (mnemo serve)
health-check-failed = {"   "}the check itself failed: { $error }
health-disk = {"   "}{ $free_mb } MB free ({ $percent } %)
health-disk-refused = {"   "}a write was refused: the disk is full ({ $free_mb } MB free)
health-database-ok = {"   "}opens and commits ({ $mb } MB)
health-database-failed = {"   "}a commit failed: { $error }
health-index = {"   "}{ $notes } notes: { $lexical } in the word index · { $stored } embeddings stored, { $vectors } in memory
health-models-ok = {"   "}present, checksums match
health-models-embed = {"   "}embedding model: { $error } — recall works by words only; run `mnemo models fetch`
health-models-speech = {"   "}speech model: { $error } — voice notes wait; run `mnemo models fetch`
health-models-rerank = {"   "}reranking model: { $error } — recall in imported chats tells a match from a near miss less well; run `mnemo models fetch`
health-telegram-off = {"   "}not used (console only)
health-telegram = {"   "}last answer { $age } s ago · errors in 10 min: { $server } 5xx, { $throttled } 429, { $network } network
health-telegram-never = {"   "}no answer since the start ({ $age } s) · errors in 10 min: { $server } 5xx, { $throttled } 429, { $network } network
health-queues = {"   "}embedding: { $embed } waiting (head stuck { $embed_age } s) · voice: { $voice } waiting (oldest { $voice_age } s)
health-transcription = {"   "}{ $failed } voice notes failed in the last hour
health-transcription-model = {"   "}{ $failed } voice notes failed in the last hour: the speech model is missing or damaged (run `mnemo models fetch`)
health-memory = {"   "}{ $mb } MB resident (limit { $limit } MB)
health-backup-off = {"   "}the backup job is off
health-backup = {"   "}last verified backup { $hours } h ago
health-backup-failed = {"   "}the last backup did not verify (last good one { $hours } h ago)
health-backup-none = {"   "}no verified backup yet
health-digests = {"   "}last 24 h: { $missed } missed, { $failed } failed or uncertain
health-alert-header = 🩺 <b>mnemo health</b> ({ $count })
health-firing = { $icon } <b>{ $check }</b>: { $event }
health-recovered = ✅ <b>{ $check }</b> recovered (lasted { $lasted })
health-flapping = 〰️ <b>{ $check }</b> keeps changing; no more alerts until it settles
health-storage-held = {"   "}mnemo cannot save anything right now. Telegram polling is paused and nothing is lost: your messages wait at Telegram and are handled once it works again. You will be told then.
health-storage-back = {"   "}mnemo saves again: polling resumed, and the messages that waited are being handled now.
btn-health-snooze = 🔕 1 h · { $check }
btn-health-ack = ✅ { $check }
btn-health-details = 🔍 { $check }
health-none-yet = No health check has run yet (they run every minute while the bot runs).
health-header = { $icon } <b>mnemo health</b> (checked { $at } UTC)
health-line = { $icon } <b>{ $check }</b> — { $phase }
alerts-empty = No health alerts so far.
alerts-header = <b>Last { $count } health alerts</b>
alerts-line = { $at } { $icon } { $check }: { $event }
health-details-header = 🔍 <b>{ $check }</b> — { $phase }. Last readings:
health-details-line = { $at } { $icon }
press-health-details = Details below.
press-health-recovered = { $check } has recovered already.
press-health-acked = ✅ Acknowledged: no repeats until { $check } recovers.
press-health-snoozed = 🔕 { $check }: no repeats for an hour.
digest-health-ok = ✅ mnemo itself: all checks ok.
digest-health-bad = ⚠️ mnemo itself: { $count } checks need attention — /health
