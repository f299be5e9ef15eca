"""`kidsasr review`: the subtitle editor (a page served on 127.0.0.1) and what it reads and writes.

`document`: the episode's cues as the editor sees them, the files a review owns, the save (rule check with
`kidsasr.cues`, atomic VTT/SRT, review side file, edit log). `server`: the HTTP server and the command.
`editor.html`: the page (plain HTML/JS, no build step, no network); `calibration`: cue confidence that finds
errors. Reviewed subtitles become training data through `kidsasr.corpus.reviewed`.
"""
