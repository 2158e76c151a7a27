"""What a deck may hold to be rendered. Rendering is linear in the deck; these caps bound what stays costly even
so, measured so that a deck at all of them renders in a few seconds in every format. A deck over one is refused
(`DeckTooComplex`) while it is parsed, before anything is rendered; the JSON export, never rendered, has none.

Numbers of characters are Unicode code points (`é` and `字` are one each)."""

from __future__ import annotations

# -- per slide
MAX_TABLE_CELLS = 2_000  # rows × columns of one table: each cell is a shape of its own in PPTX and DOCX
MAX_WORD_CHARS = 1_000  # characters in one unbroken word (title, text, cell or alt text)
MAX_CSS_SELECTORS = 2_000  # the deck's css and the slide's <style> together; `h1, h2 {…}` counts two
# -- per deck, counted over the slides in order: the slide that crosses one is named
MAX_DECK_NODES = 30_000  # tags and pieces of text between them (a line in <pre> is one): each ~0.1 ms to draw
MAX_DECK_PICTURES = 1_000  # each is decoded, hashed and embedded (~1 ms)
MAX_DECK_PIXELS = 50_000_000  # of all pictures: each is decoded, and re-encoded in PDF (~40 ms a million)
# -- not refused: shown within
MAX_LIST_DEPTH = 8  # deeper list items are shown at this level (0-based), as PowerPoint has nine


class DeckTooComplex(Exception):
    """A deck over one of the caps: the export is refused, naming the slide (1-based) and the cap."""

    def __init__(self, slide_number: int, slide_id: str, reason: str) -> None:
        super().__init__(f"Slide {slide_number} ({slide_id}): {reason}")
        self.slide_number = slide_number
        self.slide_id = slide_id
        self.reason = reason
