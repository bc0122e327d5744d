// The console's only script (served from this origin; the pages work without it): on an identity
// page, it follows the identity's decision stream and, on each new decision, fetches the page again
// and swaps in its live part. The raise form is outside that part, so nothing typed there is lost.
(() => {
  const live = document.getElementById('live');
  const status = document.getElementById('live-status');
  if (!live?.dataset.events || !('EventSource' in window)) return;
  let busy = false;
  let again = false;
  const refresh = async () => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const url = new URL(window.location.href);
      url.searchParams.delete('done');
      const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'text/html' } });
      if (new URL(res.url).pathname === '/console/login') {
        // The session ended (signed out, or idle too long): say so rather than go quiet.
        events.close();
        if (status) status.textContent = 'Your session has ended: reload the page to sign in again.';
        return;
      }
      if (!res.ok) return;
      const next = new DOMParser().parseFromString(await res.text(), 'text/html').getElementById('live');
      if (!next) return;
      // Details left open stay open.
      const open = new Set([...live.querySelectorAll('details[open] > summary')].map((s) => s.textContent));
      live.replaceChildren(...next.childNodes);
      for (const s of live.querySelectorAll('details > summary'))
        if (open.has(s.textContent)) s.parentElement.open = true;
      if (status) status.textContent = `Updated at ${new Date().toLocaleTimeString()}: a new decision.`;
    } finally {
      busy = false;
      if (again) {
        again = false;
        void refresh();
      }
    }
  };
  const events = new EventSource(live.dataset.events);
  events.addEventListener('decision', () => void refresh());
  events.addEventListener('open', () => {
    if (status && !status.textContent) status.textContent = 'Live: this page updates with each new decision.';
  });
  events.addEventListener('error', () => {
    if (status) status.textContent = 'Live updates interrupted; reconnecting…';
  });
})();
