"""`phototag report`: one self-contained HTML page of a search result, to look at.

The photos travel inside the page as small JPEG thumbnails (data URIs) with their faces as data;
a little inline JavaScript lays them out in a grid that fills the window, draws every face's box
(labels only where they can be read without overlapping: always for a few faces, on hover or
focus in crowds), filters them, and opens one photo large with its faces listed. It opens from
disk, with no server and nothing fetched. Every string from the index (a file name, a label) is
put into the page as text, never as markup.
"""

import base64
import html
import io
import json
import os
from pathlib import Path

from PIL import Image

from .labels import AGE_GROUPS, EMOTIONS
from .library.decode import DecodeError, decode_bytes
from .store import printable_path

BOX_COLOUR = "#ff00ff"
PAGE_SIZE = 48
THUMB_SIZE = 640  # long side: sharp in a grid cell, acceptable in the large view

STYLE = """
* { box-sizing: border-box; }
body { font: 14px system-ui, sans-serif; margin: 0; background: #202124; color: #e8eaed; }
header { position: sticky; top: 0; z-index: 5; background: #202124; padding: 10px 16px;
         display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; border-bottom: 1px solid #3c4043; }
header label { display: inline-flex; gap: 4px; align-items: center; }
input, select, button { font: inherit; background: #303134; color: inherit; border: 1px solid #5f6368;
                        border-radius: 4px; padding: 2px 6px; }
input[type=number] { width: 4.5em; }
#count { font-weight: 600; }
main { padding: 12px 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px;
        align-items: start; }
.card { background: #303134; padding: 6px; border-radius: 6px; cursor: pointer; outline: none; }
.card:focus-visible { box-shadow: 0 0 0 3px #8ab4f8; }
.frame { position: relative; line-height: 0; overflow: hidden; }
.frame img { width: 100%; display: block; }
#viewer .frame img { height: 100%; }
.face { position: absolute; border: 2px solid BOX; outline: none; }
.face:focus-visible { border-color: #fff; }
.tag { position: absolute; line-height: 1.25; white-space: nowrap; background: #000d; color: #fff;
       font-size: 11px; padding: 1px 4px; border-radius: 3px; pointer-events: none; z-index: 2;
       visibility: hidden; }
.tag.shown, .face:hover + .tag, .face:focus + .tag { visibility: visible; }
.face:hover + .tag, .face:focus + .tag { z-index: 3; }
.meta { font-size: 12px; margin-top: 6px; line-height: 1.35; word-break: break-all; color: #bdc1c6; }
#people { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 14px; }
.person { width: 112px; background: #303134; border-radius: 6px; padding: 6px; font-size: 12px;
          line-height: 1.3; word-break: break-word; cursor: pointer; }
.person img { width: 100px; height: 100px; object-fit: cover; border-radius: 4px; display: block; }
.person code { font-size: 10px; color: #9aa0a6; }
.pages { display: flex; gap: 8px; align-items: center; margin: 14px 0; }
#viewer { position: fixed; inset: 0; background: #000e; z-index: 10; display: none; padding: 2vh 2vw;
          gap: 16px; }
#viewer.open { display: flex; }
#viewer .large { flex: 1 1 auto; min-width: 60vw; display: flex; align-items: center; justify-content: center;
                 height: 96vh; }
#viewer .large .frame { flex: none; }
#viewer aside { flex: 0 0 300px; max-width: 32vw; overflow: auto; background: #303134; padding: 12px;
                border-radius: 6px; }
#viewer aside h2 { font-size: 15px; margin: 0 0 8px; word-break: break-all; }
#viewer ol { padding-left: 22px; }
#viewer li { margin-bottom: 6px; }
#close { position: absolute; top: 10px; right: 14px; z-index: 11; font-size: 18px; }
""".replace("BOX", BOX_COLOUR)

SCRIPT = r"""
const PHOTOS = JSON.parse(document.getElementById('photos').textContent);
const PAGE = PAGE_SIZE;
const ALWAYS_LABEL = 4;  // photos with at most this many faces show their labels
let page = 0, shown = [], current = -1;
const $ = id => document.getElementById(id);

function el(name, props, ...children) {
  const node = document.createElement(name);
  Object.assign(node, props || {});
  for (const child of children) node.append(child);
  return node;
}
const faceCount = n => `${n} face${n === 1 ? '' : 's'}`;
function describe(face) {
  const parts = face.person ? [face.person] : [];
  if (face.too_small && !face.emotion) parts.push('too small to read');
  if (face.emotion) parts.push(`${face.emotion} ${face.emotion_score.toFixed(2)}`);
  if (face.age_group) parts.push(`${face.age_group} ${face.age_score.toFixed(2)}`);
  return parts.join(' · ') || `face ${face.det_score.toFixed(2)}`;
}
function faceMatches(face, f) {
  if (f.emotion && face.emotion !== f.emotion) return false;
  if (f.age && face.age_group !== f.age) return false;
  if (f.person && face.person !== f.person) return false;
  if (f.score > 0) {
    const scores = [];
    if (f.emotion) scores.push(face.emotion_score);
    if (f.age) scores.push(face.age_score);
    if (!scores.length) scores.push(face.det_score);
    if (scores.some(s => s === null || s < f.score)) return false;
  }
  return true;
}
function filters() {
  return { emotion: $('emotion').value, age: $('age').value, person: $('person').value,
           fmin: $('fmin').value === '' ? null : +$('fmin').value,
           fmax: $('fmax').value === '' ? null : +$('fmax').value,
           from: $('from').value, to: $('to').value, score: +$('score').value || 0 };
}
function photoMatches(photo, f) {
  const n = photo.faces.length;
  if (f.fmin !== null && n < f.fmin) return false;
  if (f.fmax !== null && n > f.fmax) return false;
  const day = (photo.taken_at || '').slice(0, 10);
  if (f.from && (!day || day < f.from)) return false;
  if (f.to && (!day || day > f.to)) return false;
  return photo.faces.some(face => faceMatches(face, f));
}
function drawFaces(frame, photo, f, interactive) {
  for (const face of photo.faces) {
    const box = el('div', { className: 'face' });
    box.style.left = `${face.box[0] / photo.width * 100}%`;
    box.style.top = `${face.box[1] / photo.height * 100}%`;
    box.style.width = `${(face.box[2] - face.box[0]) / photo.width * 100}%`;
    box.style.height = `${(face.box[3] - face.box[1]) / photo.height * 100}%`;
    if (!faceMatches(face, f)) continue;  // only the faces the filters ask for
    if (interactive) box.tabIndex = 0;
    box.dataset.emotion = face.emotion || '';
    box.dataset.age = face.age_group || '';
    const tag = el('span', { className: 'tag', textContent: describe(face) });
    frame.append(box, tag);
  }
}
// Labels go under their box (above it at the bottom edge), inside the frame; a label that
// would touch one already placed waits for hover or focus instead. Largest faces first.
function placeLabels(frame, always) {
  const area = frame.getBoundingClientRect();
  const pairs = [...frame.querySelectorAll('.face')].map(b => [b, b.nextElementSibling]);
  pairs.sort((a, b) => b[0].offsetWidth * b[0].offsetHeight - a[0].offsetWidth * a[0].offsetHeight);
  const placed = [];
  for (const [box, tag] of pairs) {
    const w = tag.offsetWidth, h = tag.offsetHeight;
    let x = box.offsetLeft, y = box.offsetTop + box.offsetHeight;
    if (y + h > area.height) y = box.offsetTop - h;
    if (y < 0) y = box.offsetTop;
    x = Math.max(0, Math.min(x, area.width - w));
    tag.style.left = `${x}px`;
    tag.style.top = `${y}px`;
    const rect = { x, y, w, h };
    const clear = placed.every(p => x + w <= p.x || p.x + p.w <= x || y + h <= p.y || p.y + p.h <= y);
    const fits = w <= area.width;
    tag.classList.toggle('shown', always && clear && fits);
    if (always && clear && fits) placed.push(rect);
  }
}
function card(photo, index, f) {
  const img = el('img', { src: photo.thumb, alt: '' });
  const frame = el('div', { className: 'frame' }, img);
  drawFaces(frame, photo, f, false);
  const meta = el('div', { className: 'meta' },
                  el('div', { textContent: photo.path }),
                  el('div', { textContent: `${faceCount(photo.faces.length)}${photo.taken_at ? ' · ' + photo.taken_at : ''}` }));
  const node = el('div', { className: 'card', tabIndex: 0 }, frame, meta);
  node.dataset.index = index;
  node.onclick = () => openViewer(index);
  node.onkeydown = e => { if (e.key === 'Enter') { e.preventDefault(); openViewer(index); } };
  const label = () => placeLabels(frame, photo.faces.length <= ALWAYS_LABEL);
  if (img.complete) requestAnimationFrame(label); else img.onload = label;
  return node;
}
function render() {
  const f = filters();
  shown = PHOTOS.map((p, i) => i).filter(i => photoMatches(PHOTOS[i], f));
  const pages = Math.max(1, Math.ceil(shown.length / PAGE));
  page = Math.min(page, pages - 1);
  const faces = shown.reduce((n, i) => n + PHOTOS[i].faces.filter(face => faceMatches(face, f)).length, 0);
  $('count').textContent = `${shown.length} photos, ${faces} faces`;
  $('pageinfo').textContent = `page ${page + 1} of ${pages}`;
  const grid = $('grid');
  grid.replaceChildren(...shown.slice(page * PAGE, (page + 1) * PAGE).map(i => card(PHOTOS[i], i, f)));
}
function relabel() {
  for (const node of document.querySelectorAll('.card')) {
    const photo = PHOTOS[+node.dataset.index];
    placeLabels(node.querySelector('.frame'), photo.faces.length <= ALWAYS_LABEL);
  }
}
function openViewer(index, fromHistory) {
  current = index;
  const photo = PHOTOS[index], f = filters();
  // The photo itself where the browser can show it (sharp at any size); the thumbnail if not.
  const img = el('img', { src: photo.original || photo.thumb, alt: '' });
  img.onerror = () => { img.onerror = null; img.src = photo.thumb; };
  const frame = el('div', { className: 'frame' }, img);
  drawFaces(frame, photo, f, true);
  const list = el('ol', {}, ...photo.faces.filter(face => faceMatches(face, f)).map(face =>
    el('li', { textContent: `${face.person ? face.person + ': ' : ''}` + (face.too_small && !face.emotion
      ? 'too small to read, '
      : `${face.emotion || '–'} (${face.emotion_score === null ? '–' : face.emotion_score.toFixed(2)}), ` +
        `${face.age_group || '–'} (${face.age_score === null ? '–' : face.age_score.toFixed(2)}), `) +
      `detector ${face.det_score.toFixed(2)}` })));
  $('large').replaceChildren(frame);
  $('details').replaceChildren(
    el('h2', { textContent: photo.path }),
    el('div', { textContent: photo.taken_at ? `taken ${photo.taken_at}` : 'no capture date' }),
    el('div', { textContent: `${photo.width} × ${photo.height} px, ${faceCount(photo.faces.length)}` }),
    list);
  $('viewer').classList.add('open');
  fitLarge();
  if (!img.complete) img.onload = fitLarge;
  if (!fromHistory && history.state === null) history.pushState({ viewer: true }, '');
  $('close').focus();
}
// The photo as large as the viewer allows, whatever its thumbnail's own size: the frame gets
// the photo's proportions, the image fills it, and the boxes (in %) follow.
function fitLarge() {
  const frame = document.querySelector('#large .frame');
  if (!frame || current < 0) return;
  const photo = PHOTOS[current], area = $('large').getBoundingClientRect();
  const scale = Math.min(area.width / photo.width, area.height / photo.height);
  frame.style.width = `${Math.floor(photo.width * scale)}px`;
  frame.style.height = `${Math.floor(photo.height * scale)}px`;
  placeLabels(frame, photo.faces.length <= ALWAYS_LABEL);
}
function closeViewer(fromHistory) {
  if (!$('viewer').classList.contains('open')) return;
  $('viewer').classList.remove('open');
  const back = document.querySelector(`.card[data-index="${current}"]`);
  current = -1;
  if (!fromHistory && history.state !== null) history.back();
  if (back) back.focus();
}
function step(delta) {
  const at = shown.indexOf(current);
  if (at < 0) return;
  const next = shown[at + delta];
  if (next !== undefined) openViewer(next, true);
}
window.addEventListener('popstate', () => closeViewer(true));
document.addEventListener('keydown', e => {
  if (!$('viewer').classList.contains('open')) return;
  if (e.key === 'Escape') closeViewer(false);
  else if (e.key === 'ArrowRight') step(1);
  else if (e.key === 'ArrowLeft') step(-1);
});
$('close').onclick = () => closeViewer(false);
for (const node of document.querySelectorAll('.person[data-name]'))
  node.onclick = () => { $('person').value = node.dataset.name; page = 0; render(); };
for (const id of ['emotion', 'age', 'person', 'fmin', 'fmax', 'from', 'to', 'score'])
  $(id).addEventListener('input', () => { page = 0; render(); });
$('prev').onclick = () => { page = Math.max(0, page - 1); render(); };
$('next').onclick = () => { page = page + 1; render(); };
window.addEventListener('resize', () => { relabel(); fitLarge(); });
render();
""".replace("PAGE_SIZE", str(PAGE_SIZE))


def upright(photo, size):
    """A photo's pixels as the index describes it: upright at most ``size`` on the long side,
    turned by the orientation its index row says decoding applied (from the photo itself or
    from its XMP sidecar). None if it cannot be read."""
    fallback = photo.get("orientation") if photo.get("orientation_source") == "sidecar" else None
    try:
        with open(photo["path"], "rb") as f:
            return decode_bytes(f.read(), size, os.path.splitext(photo["path"])[1], fallback).pixels
    except (OSError, DecodeError):
        return None


def _data_uri(image):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def thumbnail(photo, size=THUMB_SIZE):
    """An upright JPEG thumbnail of an indexed photo as a data URI, or None if it cannot be read."""
    pixels = upright(photo, size)
    return None if pixels is None else _data_uri(Image.fromarray(pixels))


def face_thumbnail(photo, box, side=100):
    """A square JPEG of one face (with some room around it) as a data URI, or None."""
    pixels = upright(photo, 1600)
    if pixels is None:
        return None
    scale = pixels.shape[1] / photo["width"]
    x1, y1, x2, y2 = (v * scale for v in box)
    half = max(x2 - x1, y2 - y1) * 0.8
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    crop = Image.fromarray(pixels).crop((round(cx - half), round(cy - half),
                                         round(cx + half), round(cy + half)))
    return _data_uri(crop.resize((side, side), Image.Resampling.LANCZOS))


BROWSER_FORMATS = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def _original(photo):
    """The photo file itself, for the large view, where a browser shows it upright by itself:
    a format it reads, turned (if at all) by the photo's own EXIF; else None (the thumbnail)."""
    path = Path(photo["path"])
    if path.suffix.lower() not in BROWSER_FORMATS or photo.get("orientation_source") == "sidecar":
        return None
    return path.as_uri()


def _photo_data(photo, thumb):
    return {
        "path": printable_path(photo["path"]),
        "original": _original(photo),
        "taken_at": photo.get("taken_at"),
        "width": photo["width"],
        "height": photo["height"],
        "thumb": thumb,
        "faces": [{
            "box": [face["x1"], face["y1"], face["x2"], face["y2"]],
            "det_score": face["det_score"],
            "emotion": face.get("emotion"), "emotion_score": face.get("emotion_score"),
            "age_group": face.get("age_group"), "age_score": face.get("age_score"),
            "too_small": bool(face.get("too_small")), "person": face.get("person"),
        } for face in photo["faces"]],
    }


def _json_for_script(value):
    """JSON that cannot end its <script> element early, whatever the strings in it hold."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _people_section(people, photos_by_path):
    """One face per person, named people first; an unnamed one says how to name it."""
    if not people:
        return ""
    cards = []
    for person in people:
        photo = photos_by_path(person["sample"]) if person["sample"] else None
        image = face_thumbnail(photo, person["sample_box"]) if photo else None
        picture = f"<img alt='' src='{image}'>" if image else ""
        if person["name"]:
            name = html.escape(person["name"])
            cards.append(f"<div class='person' data-name='{name}' title='show {name}'>{picture}"
                         f"{name}<br>{person['photos']} photos</div>")
        else:
            cards.append(f"<div class='person'>{picture}unnamed, {person['photos']} photos<br>"
                         f"<code>phototag people name {person['id']} NAME</code></div>")
    return f"<section id='people' aria-label='people'>{''.join(cards)}</section>"


def render(photos, title="phototag", thumb_size=THUMB_SIZE, people=(), photo_of=None,
           emotion="", age="", person=""):
    """The page for ``photos`` (dicts as ``Reader.photo`` returns them): (html, photos shown).
    ``people``: rows of ``Reader.people`` for the people strip (``photo_of`` gives a sample's
    photo by path); ``emotion``, ``age``, ``person``: the filters the page opens with."""
    data = []
    for photo in photos:
        if not photo.get("width"):
            continue
        image = thumbnail(photo, thumb_size)
        if image is not None:
            data.append(_photo_data(photo, image))
    names = sorted({p["name"] for p in people if p["name"]}, key=str.casefold)
    # --person is case-insensitive; the page's filter compares the names as the index has them
    person = next((n for n in names if n.casefold() == person.casefold()), person)
    if person and person not in names:
        names.append(person)

    def options(values, chosen):
        return "".join(f"<option{' selected' if v == chosen else ''}>{html.escape(v)}</option>"
                       for v in values)

    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><header>"
        "<span id='count'></span>"
        f"<label>emotion <select id='emotion'><option value=''>any</option>{options(EMOTIONS, emotion)}</select></label>"
        f"<label>age <select id='age'><option value=''>any</option>{options(AGE_GROUPS, age)}</select></label>"
        f"<label>person <select id='person'><option value=''>anyone</option>{options(names, person)}</select></label>"
        "<label>faces <input id='fmin' type='number' min='0' placeholder='min'>"
        "–<input id='fmax' type='number' min='0' placeholder='max'></label>"
        "<label>taken <input id='from' type='date'>–<input id='to' type='date'></label>"
        "<label>min score <input id='score' type='number' min='0' max='1' step='0.05' value='0'></label>"
        f"</header><main>{_people_section(people, photo_of)}<div id='grid' class='grid'></div><div class='pages'>"
        "<button id='prev'>previous</button><span id='pageinfo'></span><button id='next'>next</button>"
        "</div></main><div id='viewer' role='dialog' aria-modal='true'>"
        "<button id='close' aria-label='close'>✕</button><div id='large' class='large'></div>"
        "<aside id='details'></aside></div>"
        f"<script type='application/json' id='photos'>{_json_for_script(data)}</script>"
        f"<script>{SCRIPT}</script></body></html>"
    )
    return page, len(data)
