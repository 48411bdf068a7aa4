// Page-wide notifications between the tabs (e.g. "a session was created, History is stale").

const target = new EventTarget();

export function emit(name, detail = {}) {
  target.dispatchEvent(new CustomEvent(name, { detail }));
}

export function on(name, handler) {
  const listener = (event) => handler(event.detail);
  target.addEventListener(name, listener);
  return () => target.removeEventListener(name, listener);
}

export const SESSIONS_CHANGED = 'sessions-changed';
