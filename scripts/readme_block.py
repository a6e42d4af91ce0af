"""The README's generated blocks: text between `<!-- NAME -->` and `<!-- /NAME -->` that a script writes."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def read_block(name: str, path: Path = README) -> str:
    """What the block NAME holds now (without its markers)."""
    found = re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", path.read_text(), flags=re.S)
    if found is None:
        raise ValueError(f"{path.name} has no <!-- {name} --> block")
    return found.group(1)


def write_block(name: str, body: str, path: Path = README) -> None:
    """Replace the block NAME's contents with body, and print it."""
    read_block(name, path)  # the markers must be there: a typo never rewrites nothing silently
    block = f"<!-- {name} -->\n{body}\n<!-- /{name} -->"
    path.write_text(re.sub(rf"<!-- {name} -->.*?<!-- /{name} -->", lambda _: block, path.read_text(), flags=re.S))
    print(block)
