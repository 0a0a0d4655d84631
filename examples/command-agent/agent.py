#!/usr/bin/env python3
"""A society agent written as a plain program, for the `command` brain.

The runtime runs this script once per message, in the agent's workspace/:

  stdin   one JSON document: {"message": <envelope>, "agent", "role", "folder",
          "workspace", "case", "attempt", "generation"}
  stdout  one JSON action per line (see "The command brain protocol" in FORMAT.md)
  stderr  free text, recorded in the agent's activity.jsonl (`command_stderr`)
  exit    0 = handled; anything else = a failed attempt, retried up to
          max_attempts, then dead-lettered

It may be run again for the same message after a crash (at-least-once), so it
only does things that are harmless to repeat: it rewrites the same file and
the runtime drops the repeated outputs.
"""

import json
import os
import sys


def emit(action, **fields):
    """One action, one line on stdout."""
    print(json.dumps({"action": action, **fields}), flush=True)


def main():
    request = json.load(sys.stdin)
    message = request["message"]
    body = message["body"]

    # `society case new --assign notes` tells us about the case first.
    if message["type"] == "case_assigned":
        emit("log", message=f"assigned case {request['case']}: {body.get('purpose')}")
        emit("done")
        return

    text = body.get("text") or json.dumps(body)
    style = os.environ.get("NOTES_STYLE", "short")
    print(
        f"agent.py: {request['agent']} handles {message['type']} {message['id']}"
        f" (attempt {request['attempt']}, style {style})",
        file=sys.stderr,
    )

    # The work: a (very) small analysis of the text, kept as a file.
    words = text.split()
    path = f"output/notes-{message['id']}.md"
    notes = [
        f"# Notes on {message['id']}",
        "",
        f"From {message['from']}: {text}",
        "",
        f"{len(words)} words; longest: {max(words, key=len) if words else '-'}",
    ]
    emit("write_file", path=path, content="\n".join(notes) + "\n")

    # Progress on the case, when the message belongs to one.
    if request["case"]:
        emit("case_event", event="notes_written", fields={"path": path, "words": len(words)})

    # The answer goes back to whoever sent the message.
    emit("reply", body={"text": f"noted {len(words)} words", "path": path})
    emit("done")


if __name__ == "__main__":
    main()
