"""The look of the chat page: a gradio theme, the stylesheet for the HTML that `render` makes, and one
small script.

Kept as Python strings rather than asset files so they ship with the package without package-data
rules. Colours come from the theme's CSS variables where one fits, so dark mode follows along.
"""

from __future__ import annotations

# System fonts only: the page must render offline, with nothing fetched from a font service.
FONT = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif")
MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")


def theme():
    import gradio as gr

    return gr.themes.Default(primary_hue="emerald", secondary_hue="emerald", neutral_hue="slate", font=FONT, font_mono=MONO)


CSS = """
/* ---- page frame (the outer container is styled in HEAD) ------------------------------------- */
#pk-header { padding: 6px 2px 2px; }
#pk-header .pk-title { font-size: 1.45rem; font-weight: 700; letter-spacing: -0.01em; color: var(--body-text-color); }
#pk-header .pk-title span { font-weight: 500; color: var(--body-text-color-subdued); }
#pk-header .pk-subtitle { margin: 4px 0 0; font-size: 0.92rem; line-height: 1.45; color: var(--body-text-color-subdued); max-width: 70ch; }
#pk-header .pk-coll { color: var(--body-text-color); font-weight: 600; }
#pk-top { align-items: center; gap: 16px; flex-wrap: wrap; }
#pk-top > .form:has(#pk-collection) { flex: 0 0 230px !important; background: none; border: none; box-shadow: none; }
#pk-top > .form:has(#pk-collection) > #pk-collection { border: none; background: none; padding: 0; }
#pk-header-block { flex: 1 1 420px !important; }
#pk-composer { align-items: stretch; gap: 8px; flex-wrap: nowrap; }
#pk-composer > * { min-width: 0 !important; }
#pk-clear { flex: 0 0 auto !important; width: auto !important; padding: 0 18px; font-weight: 500; }
#pk-chat { overflow-x: hidden; }
#pk-chat .placeholder-content { min-height: 100%; display: flex; flex-direction: column; justify-content: center; padding: 16px; box-sizing: border-box; }
#pk-chat .placeholder { text-align: center; color: var(--body-text-color-subdued); }
#pk-chat .message-wrap, #pk-chat .message, #pk-chat .message-row { min-width: 0; max-width: 100%; }
#pk-chat .message-row .md { overflow-wrap: anywhere; }

/* ---- one assistant message ------------------------------------------------------------------ */
.pk-msg { font-size: 0.97rem; line-height: 1.55; min-width: 0; }
.pk-msg p { margin: 0 0 0.55em; }
.pk-msg p:last-child { margin-bottom: 0; }
.pk-searched { font-size: 0.82rem; color: var(--body-text-color-subdued); margin-bottom: 6px; }
.pk-searched q { font-style: italic; }
.pk-ref { display: inline-block; padding: 0 4px; margin: 0 1px; border-radius: 5px; font-size: 0.78em; font-weight: 600;
  line-height: 1.5; vertical-align: 0.12em; text-decoration: none !important; color: var(--color-accent) !important;
  background: var(--color-accent-soft); border: 1px solid transparent; cursor: pointer; }
.pk-ref:hover, .pk-ref:focus-visible { border-color: var(--color-accent); }
.pk-unsupported { text-decoration: underline wavy #d97706; text-underline-offset: 3px; background: rgba(217, 119, 6, 0.08); }
.pk-flag { margin-top: 8px; padding: 6px 10px; border-radius: 8px; font-size: 0.85rem; color: #92400e;
  background: rgba(245, 158, 11, 0.12); border: 1px solid rgba(217, 119, 6, 0.35); }
.dark .pk-flag { color: #fcd34d; }
.pk-flag ul { margin: 4px 0 0 1.2em; padding: 0; }

/* ---- sources -------------------------------------------------------------------------------- */
.pk-sources { margin-top: 12px; display: flex; flex-direction: column; gap: 6px; }
.pk-label { font-size: 0.72rem; font-weight: 700; letter-spacing: 0.06em; text-transform: uppercase; color: var(--body-text-color-subdued); }
.pk-card { border: 1px solid var(--border-color-primary); border-radius: 10px; background: var(--background-fill-secondary);
  min-width: 0; transition: box-shadow 0.3s; scroll-margin: 12px; }
.pk-card > summary { list-style: none; cursor: pointer; padding: 8px 10px; display: grid; gap: 2px 8px;
  grid-template-columns: auto minmax(0, 1fr) auto; align-items: center; }
.pk-card > summary::-webkit-details-marker { display: none; }
.pk-card > summary:hover { background: var(--background-fill-primary); border-radius: 10px; }
.pk-n { grid-row: 1; width: 1.6em; height: 1.6em; border-radius: 50%; display: inline-flex; align-items: center; justify-content: center;
  font-size: 0.78rem; font-weight: 700; color: var(--color-accent); background: var(--color-accent-soft); }
.pk-head { grid-row: 1; min-width: 0; display: flex; flex-wrap: wrap; gap: 0 8px; align-items: baseline; }
.pk-doc { font-weight: 600; font-size: 0.88rem; }
.pk-sec { font-size: 0.8rem; color: var(--body-text-color-subdued); }
.pk-page { font-size: 0.78rem; font-weight: 600; color: var(--body-text-color); background: var(--background-fill-primary);
  border: 1px solid var(--border-color-primary); border-radius: 999px; padding: 0 7px; white-space: nowrap; }
.pk-sec::before { content: "§ "; }
.pk-badge { grid-row: 1; font-size: 0.72rem; font-weight: 600; padding: 1px 7px; border-radius: 999px; white-space: nowrap; }
.pk-ok { color: #047857; background: rgba(16, 185, 129, 0.14); }
.pk-warn { color: #b45309; background: rgba(245, 158, 11, 0.16); }
.dark .pk-ok { color: #6ee7b7; } .dark .pk-warn { color: #fcd34d; }
.pk-preview { grid-column: 2 / 4; font-size: 0.85rem; color: var(--body-text-color-subdued); font-style: italic;
  overflow: hidden; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
.pk-card[open] .pk-preview { display: none; }
.pk-card[open] > summary { border-bottom: 1px solid var(--border-color-primary); border-radius: 10px 10px 0 0; }
.pk-passage { padding: 10px 12px 4px; font-size: 0.88rem; line-height: 1.6; overflow-wrap: anywhere; }
.pk-passage mark { background: rgba(250, 204, 21, 0.45); color: inherit; padding: 1px 2px; border-radius: 3px; }
.dark .pk-passage mark { background: rgba(250, 204, 21, 0.3); }
.pk-where { padding: 2px 12px 10px; font-size: 0.74rem; color: var(--body-text-color-subdued); font-family: var(--font-mono); overflow-wrap: anywhere; }
.pk-card-warn { border-color: rgba(217, 119, 6, 0.45); }
.pk-flash { box-shadow: 0 0 0 3px var(--color-accent-soft), 0 0 0 1px var(--color-accent); }

/* ---- declines, errors, progress ------------------------------------------------------------- */
.pk-decline-box { padding: 10px 12px; border-radius: 10px; background: var(--background-fill-secondary); border: 1px dashed var(--border-color-primary); }
.pk-decline-title { font-weight: 700; font-size: 0.9rem; margin-bottom: 2px; }
.pk-reason { font-size: 0.85rem; color: var(--body-text-color-subdued); }
.pk-error { padding: 10px 12px; border-radius: 10px; background: rgba(239, 68, 68, 0.08); border: 1px solid rgba(239, 68, 68, 0.35); }
.pk-error-title { font-weight: 700; font-size: 0.9rem; color: #b91c1c; margin-bottom: 2px; }
.dark .pk-error-title { color: #fca5a5; }
.pk-pending { color: var(--body-text-color-subdued); font-size: 0.9rem; display: flex; align-items: center; gap: 8px; }
.pk-dots { display: inline-flex; gap: 3px; }
.pk-dots i { width: 6px; height: 6px; border-radius: 50%; background: currentColor; animation: pk-blink 1.2s infinite; }
.pk-dots i:nth-child(2) { animation-delay: 0.2s; } .pk-dots i:nth-child(3) { animation-delay: 0.4s; }
.pk-cursor { display: inline-block; width: 0.5em; height: 1em; margin-left: 2px; vertical-align: -0.12em; background: currentColor; animation: pk-blink 1s infinite; }
@keyframes pk-blink { 0%, 100% { opacity: 0.2; } 50% { opacity: 1; } }

/* ---- documents and uploads ------------------------------------------------------------------ */
.pk-docs { font-size: 0.88rem; }
#pk-docs .pk-table { width: 100%; border-collapse: collapse; border: none; font-variant-numeric: tabular-nums; margin: 0; }
#pk-docs .pk-table tr { border: none; }
#pk-docs .pk-table th, #pk-docs .pk-table td { padding: 6px 8px; border: none; border-bottom: 1px solid var(--border-color-primary);
  text-align: right; vertical-align: top; background: none; }
#pk-docs .pk-table th { font-size: 0.78rem; font-weight: 600; color: var(--body-text-color-subdued); }
#pk-docs .pk-table th:nth-child(-n+3), #pk-docs .pk-table td:nth-child(-n+3) { text-align: left; }
.pk-file { font-family: var(--font-mono); font-size: 0.8rem; overflow-wrap: anywhere; }
.pk-upload { font-size: 0.88rem; }
.pk-upload ul { list-style: none; margin: 6px 0 0; padding: 0; }
.pk-upload li { padding: 2px 0; overflow-wrap: anywhere; }
.pk-upload .pk-mark { display: inline-block; width: 1.2em; font-weight: 700; }
.pk-upload .pk-done .pk-mark { color: #047857; }
.pk-upload .pk-fail .pk-mark { color: #b91c1c; }
.dark .pk-upload .pk-done .pk-mark { color: #6ee7b7; } .dark .pk-upload .pk-fail .pk-mark { color: #fca5a5; }
.pk-upload-done { font-weight: 600; }
.pk-upload-error { color: #b91c1c; font-weight: 600; }
.dark .pk-upload-error { color: #fca5a5; }
.pk-hint { margin: 0; font-size: 0.8rem; color: var(--body-text-color-subdued); }
.pk-note { font-size: 0.85rem; color: var(--body-text-color-subdued); font-style: italic; }

/* ---- explain panel -------------------------------------------------------------------------- */
.pk-explain { font-size: 0.88rem; }
.pk-explain > p { margin: 0 0 8px; }
.pk-muted { color: var(--body-text-color-subdued); }
.pk-table-wrap { overflow-x: auto; }
#pk-explain .pk-table { width: 100%; border-collapse: collapse; border: none; font-variant-numeric: tabular-nums; margin: 0; }
#pk-explain .pk-table tr { border: none; }
#pk-explain .pk-table th, #pk-explain .pk-table td { padding: 6px 8px; border: none; border-bottom: 1px solid var(--border-color-primary);
  text-align: right; vertical-align: top; background: none; }
#pk-explain .pk-table th { font-size: 0.78rem; font-weight: 600; color: var(--body-text-color-subdued); }
#pk-explain .pk-table th:nth-child(-n+2), #pk-explain .pk-table td:nth-child(-n+2) { text-align: left; }
.pk-src { display: flex; flex-wrap: wrap; gap: 0 8px; align-items: baseline; }
.pk-tag { font-size: 0.7rem; font-weight: 700; color: var(--color-accent); background: var(--color-accent-soft); padding: 0 6px; border-radius: 999px; }
.pk-timings { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 10px 0 0; }
.pk-timings div { display: flex; gap: 6px; }
.pk-timings dt { color: var(--body-text-color-subdued); }
.pk-timings dd { margin: 0; font-weight: 600; font-variant-numeric: tabular-nums; }

/* ---- phones --------------------------------------------------------------------------------- */
@media (max-width: 640px) {
  #pk-header .pk-title { font-size: 1.25rem; }
  #pk-header .pk-tagline { display: block; font-size: 1rem; }
  #pk-header .pk-dot { display: none; }
  #pk-header .pk-subtitle { font-size: 0.84rem; }
  .pk-card > summary { grid-template-columns: auto minmax(0, 1fr); }
  .pk-badge { grid-row: auto; grid-column: 2; justify-self: start; }
  .pk-preview { grid-column: 1 / 3; }
  #pk-explain .pk-table th:nth-child(4), #pk-explain .pk-table td:nth-child(4), #pk-explain .pk-table th:nth-child(5), #pk-explain .pk-table td:nth-child(5) { display: none; }
  #pk-docs .pk-table th:nth-child(2), #pk-docs .pk-table td:nth-child(2), #pk-docs .pk-table th:nth-child(3), #pk-docs .pk-table td:nth-child(3) { display: none; }
  #pk-top > .form:has(#pk-collection) { flex: 1 1 100% !important; }
}
"""

# The frame of the page, and one script. Clicking [n] opens its source card and brings it into view:
# Chromium already opens a <details> when a link points inside it; the script does the same in every
# browser and flashes the card so the eye finds it.
HEAD = """
<style>
/* Gradio scopes the CSS it is given to the inside of the page, so the frame around it is set here. */
.gradio-container { width: 100% !important; max-width: 920px !important; margin: 0 auto !important; padding: 12px 16px !important; box-sizing: border-box; }
@media (max-width: 640px) {
  .gradio-container { padding: 4px 10px !important; }
  .gradio-container .main { padding: 8px 0 !important; }
}
</style>
<script>
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a.pk-ref");
  if (!link) return;
  var target = document.getElementById((link.getAttribute("href") || "").slice(1));
  if (!target) return;
  event.preventDefault();
  var card = target.closest("details") || target;
  if (card.tagName === "DETAILS") card.open = true;
  // A tall card (a long passage on a phone) is brought in by its top, so its title shows.
  var panel = card.closest("[role=log]");
  var tall = panel && card.getBoundingClientRect().height > panel.clientHeight * 0.7;
  card.scrollIntoView({ behavior: "smooth", block: tall ? "start" : "nearest" });
  card.classList.remove("pk-flash");
  void card.offsetWidth;
  card.classList.add("pk-flash");
  setTimeout(function () { card.classList.remove("pk-flash"); }, 1600);
});
</script>
"""
