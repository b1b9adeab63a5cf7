// keys.jsx: the till's keyboard. Every action has a key, F-keys or
// Alt+letter, shown on its button (<Kbd>) and announced to assistive
// technology (aria-keyshortcuts). A view registers its keys with useKeys;
// the keys work wherever the focus is, inside a field too.
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import { Button } from '../lib/ui.jsx';

/* "F9", "Alt+R", "Escape", or null for a key the till does not use.
 * Alt+letter is read from the key's position (e.code), so it is the
 * same with a Russian layout. */
export function keyName(e) {
  if (e.ctrlKey || e.metaKey) return null;
  if (e.altKey) {
    const m = /^Key([A-Z])$/.exec(e.code || '');
    return m ? 'Alt+' + m[1] : null;
  }
  if (/^F\d{1,2}$/.test(e.key)) return e.key;
  if (e.key === 'Escape') return 'Escape';
  return null;
}

/* useKeys({F9: fn, 'Alt+P': fn}): the handlers of the keys while the
 * calling component is shown. A handler returning false lets the key
 * through. */
export function useKeys(map) {
  const ref = useRef(map);
  ref.current = map;
  useEffect(() => {
    const on = (e) => {
      const name = keyName(e);
      const f = name && ref.current[name];
      if (!f || e.defaultPrevented) return;
      if (f(e) === false) return;
      e.preventDefault();
    };
    addEventListener('keydown', on);
    return () => removeEventListener('keydown', on);
  }, []);
}

export function Kbd({ k }) {
  return <kbd class="key">{k}</kbd>;
}

/* A button with its key: <KeyButton k="F9" onClick=...>Pay</KeyButton>. */
export function KeyButton({ k, children, ...props }) {
  return (
    <Button aria-keyshortcuts={k} {...props}>
      {children} <Kbd k={k} />
    </Button>
  );
}

/* Focuses ref's element when `when` becomes true (and on mount if so),
 * before the next key arrives: a scanner types fast. */
export function useFocus(ref, when = true, deps = []) {
  useLayoutEffect(() => {
    const el = ref.current;
    if (!when || !el) return;
    el.focus();
    /* The caret after what is there (a digit a scanner already typed). */
    if (el.tagName === 'INPUT' && /^(text|tel|search)?$/.test(el.getAttribute('type') || ''))
      el.setSelectionRange(el.value.length, el.value.length);
  }, [when, ...deps]);
}
