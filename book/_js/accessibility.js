// Accessible names the theme and the widget library leave out (issue 17; checked by axe-core in
// tests/test_site.py). Runs on every page, also for widgets drawn after the page has loaded.
//  - ipywidgets' sliders are noUiSlider handles (role="slider"), keyboard-operable but unnamed:
//    each gets the visible description of its widget as its name.
//  - a figure that an explorer draws from its saved state (an image in an ipywidgets Output) has no
//    alternative text: it gets one that names the explorer's current settings. (A fallback: the
//    prose around each explorer says what it shows.)
//  - the theme's colour-mode button is named "Color mode", but its three icons carry titles
//    ("Light", ...) that become its content: they are decoration, hidden from assistive technology.
//  - the search button is labelled "Search" but shows "Search Ctrl+K" (WCAG 2.5.3, label in
//    name): it is named by its text instead, and the shortcut is declared as aria-keyshortcuts.
function nameTheUnnamed() {
  document.querySelectorAll(".widget-slider").forEach((widget) => {
    const handle = widget.querySelector('[role="slider"]:not([aria-label])');
    const label = widget.querySelector(".widget-label");
    if (handle) handle.setAttribute("aria-label", (label && label.textContent.trim()) || "value");
  });
  document.querySelectorAll(".widget-output img:not([alt])").forEach((img) => {
    const box = img.closest(".widget-interact") || img.closest(".widget-container");
    const rows = box ? [...box.querySelectorAll(".widget-inline-hbox")] : [];
    const settings = rows.map((row) => {
      const label = row.querySelector(".widget-label");
      const value = row.querySelector(".widget-readout, select, input");
      return label && value ? `${label.textContent.trim()} ${(value.value || value.textContent).trim()}` : "";
    }).filter(Boolean).join(", ");
    img.setAttribute("alt", "The figure this explorer draws for its current settings" +
      (settings ? ` (${settings})` : "") + "; the text around the explorer says what it shows.");
  });
  document.querySelectorAll(".theme-switch-button i[title]").forEach((icon) => {
    icon.setAttribute("aria-hidden", "true");
    icon.removeAttribute("title");
  });
  document.querySelectorAll(".search-button__button[aria-label]").forEach((button) => {
    button.removeAttribute("aria-label");
    button.setAttribute("aria-keyshortcuts", "Control+K");
  });
}
nameTheUnnamed();
new MutationObserver(nameTheUnnamed).observe(document.documentElement, { childList: true, subtree: true });
