"""`phototag report`: one self-contained HTML page of a search result.

Each photo is embedded as a JPEG thumbnail (data URI) with its faces drawn over it and labelled
with emotion and age group; the page filters by emotion and age and pages through large results
with a few lines of inline JavaScript. It opens from disk, with no server.
"""

import base64
import html
import io
import os

from PIL import Image

from .labels import AGE_GROUPS, EMOTIONS
from .library.decode import DecodeError, decode_bytes
from .store import printable_path

BOX_COLOUR = "#ff00ff"
PAGE_SIZE = 24

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 16px; background: #202124; color: #e8eaed; }
header { margin-bottom: 12px; }
select, button { font: inherit; margin-right: 8px; }
.photos { display: flex; flex-wrap: wrap; gap: 12px; }
.photo { background: #303134; padding: 8px; width: 480px; }
.frame { position: relative; line-height: 0; }
.frame img { width: 100%; display: block; }
.face { position: absolute; box-sizing: border-box; border: 3px solid BOX; }
.face span { position: absolute; top: 100%; left: -3px; line-height: 1.2; white-space: nowrap;
             background: #000c; color: #fff; font-size: 11px; padding: 1px 3px; }
.path { font-size: 12px; word-break: break-all; margin-top: 6px; }
.hidden { display: none; }
""".replace("BOX", BOX_COLOUR)

SCRIPT = """
const PAGE = PAGE_SIZE;
let page = 0;
function visible() {
  const emotion = document.getElementById('emotion').value;
  const age = document.getElementById('age').value;
  const shown = [];
  for (const photo of document.querySelectorAll('.photo')) {
    let any = false;
    for (const face of photo.querySelectorAll('.face')) {
      const ok = (!emotion || face.dataset.emotion === emotion) && (!age || face.dataset.age === age);
      face.classList.toggle('hidden', !ok);
      any = any || ok;
    }
    photo.dataset.match = any ? '1' : '';
    if (any) shown.push(photo);
  }
  return shown;
}
function render() {
  const shown = visible();
  const pages = Math.max(1, Math.ceil(shown.length / PAGE));
  page = Math.min(page, pages - 1);
  for (const photo of document.querySelectorAll('.photo')) photo.classList.add('hidden');
  shown.slice(page * PAGE, (page + 1) * PAGE).forEach(p => p.classList.remove('hidden'));
  document.getElementById('pageinfo').textContent =
    `${shown.length} photos · page ${page + 1} of ${pages}`;
}
function move(step) { page = Math.max(0, page + step); render(); }
document.getElementById('emotion').onchange = () => { page = 0; render(); };
document.getElementById('age').onchange = () => { page = 0; render(); };
render();
""".replace("PAGE_SIZE", str(PAGE_SIZE))


def thumbnail(path, size):
    """An upright JPEG thumbnail of a photo as a data URI, or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            pixels = decode_bytes(f.read(), size, os.path.splitext(path)[1])[0]
    except (OSError, DecodeError):
        return None
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _face_html(face, width, height):
    x1, y1, x2, y2 = face["x1"], face["y1"], face["x2"], face["y2"]
    style = (f"left:{x1 / width * 100:.3f}%;top:{y1 / height * 100:.3f}%;"
             f"width:{(x2 - x1) / width * 100:.3f}%;height:{(y2 - y1) / height * 100:.3f}%")
    parts = []
    if face.get("emotion"):
        parts.append(f"{face['emotion']} {face['emotion_score']:.2f}")
    if face.get("age_group"):
        parts.append(f"{face['age_group']} {face['age_score']:.2f}")
    label = html.escape(" · ".join(parts) or f"face {face['det_score']:.2f}")
    return (f'<div class="face" style="{style}" data-emotion="{html.escape(face.get("emotion") or "")}" '
            f'data-age="{html.escape(face.get("age_group") or "")}"><span>{label}</span></div>')


def render(photos, title="phototag", thumb_size=480):
    """The page for ``photos`` (dicts as ``Index.photo`` returns them)."""
    cards = []
    for photo in photos:
        image = thumbnail(photo["path"], thumb_size)
        if image is None or not photo.get("width"):
            continue
        faces = "".join(_face_html(face, photo["width"], photo["height"]) for face in photo["faces"])
        cards.append(
            f'<div class="photo"><div class="frame"><img src="{image}" alt="">{faces}</div>'
            f'<div class="path">{html.escape(printable_path(photo["path"]))}</div></div>'
        )
    options = lambda names: "".join(f"<option>{n}</option>" for n in names)  # noqa: E731
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><header>"
        f"<select id='emotion'><option value=''>any emotion</option>{options(EMOTIONS)}</select>"
        f"<select id='age'><option value=''>any age</option>{options(AGE_GROUPS)}</select>"
        f"<button onclick='move(-1)'>previous</button><button onclick='move(1)'>next</button>"
        f"<span id='pageinfo'></span></header><div class='photos'>{''.join(cards)}</div>"
        f"<script>{SCRIPT}</script></body></html>"
    )
