// Tiny DOM helpers: no framework, so the page loads fast and works on a phone (issue 5).

/** h('div', { class: 'x', 'data-testid': 'y', onclick }, child, ...) → element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

/** Replaces the children of `el`. */
export function render(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Runs `fn`, which re-renders part of `root`, keeping what the person was typing: every input or
 * textarea with a `data-draft-key` gets its value back in the new element with the same key, and
 * the one being typed in keeps the focus and the caret. The lists are rebuilt on every change of
 * an alert; without this a nurse's comment vanished whenever another point joined the fire.
 */
export function keepingDrafts(root, fn) {
  const active = document.activeElement;
  const drafts = [];
  let focus = null;
  for (const el of root.querySelectorAll('[data-draft-key]')) {
    if (el.value !== '' || el === active) drafts.push([el.dataset.draftKey, el.value]);
    if (el === active) focus = { key: el.dataset.draftKey, start: el.selectionStart, end: el.selectionEnd };
  }
  fn();
  if (drafts.length === 0) return;
  const byKey = new Map();
  for (const el of root.querySelectorAll('[data-draft-key]')) if (!byKey.has(el.dataset.draftKey)) byKey.set(el.dataset.draftKey, el);
  for (const [key, value] of drafts) {
    const el = byKey.get(key);
    if (el !== undefined) el.value = value;
  }
  const el = focus && byKey.get(focus.key);
  if (el) {
    el.focus({ preventScroll: true });
    try {
      el.setSelectionRange(focus.start, focus.end);
    } catch {
      // not a text input
    }
  }
}

/**
 * Holds re-renders of `root` back while a finger or the mouse is down on it: a button replaced
 * between pointerdown and pointerup never gets its click, so a tap on "acknowledge" during a fire
 * (its cards re-rendered at every joining point) was lost. The render waits for the pointer to lift,
 * at most `maxHoldMs` (a press that never lifts must not freeze the list). Returns `schedule(fn)`:
 * runs fn now, or once the pointer is up (only the latest fn).
 */
export function tapSafe(root, maxHoldMs = 1500) {
  let down = false;
  let pending = null;
  let timer;
  const flush = () => {
    down = false;
    clearTimeout(timer);
    const fn = pending;
    pending = null;
    // After the click that the lift produces has run.
    if (fn) setTimeout(fn, 0);
  };
  root.addEventListener('pointerdown', () => {
    down = true;
    clearTimeout(timer);
    timer = setTimeout(flush, maxHoldMs);
  }, true);
  for (const type of ['pointerup', 'pointercancel']) window.addEventListener(type, () => down && flush(), true);
  return (fn) => {
    if (down) pending = fn;
    else fn();
  };
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}
