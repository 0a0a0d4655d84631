#!/usr/bin/env python3
"""An own tool with an effect: appends a note to notes.md (it runs in the
agent's workspace/).

A call cut short by a crash is run again by the agent's next process, with
the same SOCIETY_TOOL_CALL_ID. The id is written on the note's line, and a
call whose id is there already adds nothing: the note is added once."""

import json
import os
import sys

args = json.load(sys.stdin)
text = " ".join(str(args.get("text", "")).split())
if not text:
    sys.exit("add_note needs a non-empty `text`")
call = os.environ["SOCIETY_TOOL_CALL_ID"]
marker = f"<!-- {call} -->"
try:
    with open("notes.md", encoding="utf-8") as f:
        if any(line.rstrip().endswith(marker) for line in f):
            print("noted already")
            sys.exit(0)
except FileNotFoundError:
    pass
with open("notes.md", "a", encoding="utf-8") as f:
    f.write(f"- {text} {marker}\n")
    f.flush()
    os.fsync(f.fileno())
print("noted")
