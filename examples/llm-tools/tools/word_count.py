#!/usr/bin/env python3
"""An own tool of the `llm` brain: the call's arguments arrive as one JSON
object on stdin, and what it prints is the result the model sees. A
non-zero exit is a failed call; the end of stderr tells the model why."""

import json
import sys

args = json.load(sys.stdin)
text = args.get("text")
if not isinstance(text, str):
    sys.exit("word_count needs a string argument `text`")
print(len(text.split()))
