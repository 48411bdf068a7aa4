// The tab strip (WAI-ARIA tabs pattern): one tab in the Tab order, arrow keys, Home and End move
// between tabs and select them. Selecting goes through `onChoose`, which puts it in the URL.

export function setupTabs(tablist, onChoose) {
  const tabs = [...tablist.querySelectorAll('[role="tab"]')];

  function select(name) {
    for (const tab of tabs) {
      const selected = tab.dataset.tab === name;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
      document.getElementById(tab.getAttribute('aria-controls')).hidden = !selected;
    }
  }

  tablist.addEventListener('click', (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) onChoose(tab.dataset.tab);
  });

  tablist.addEventListener('keydown', (event) => {
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    const moves = {
      ArrowRight: index + 1, ArrowLeft: index - 1, ArrowDown: index + 1, ArrowUp: index - 1,
      Home: 0, End: tabs.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
    next.focus();
    onChoose(next.dataset.tab);
  });

  return { select, names: tabs.map((tab) => tab.dataset.tab) };
}
