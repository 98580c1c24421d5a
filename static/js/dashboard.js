// Dashboard helpers (loaded with defer; no inline script under the CSP).
// Clicking a one-time secret (invite link, 2FA key) selects it whole, ready to copy.
document.addEventListener("click", (event) => {
  const target = event.target.closest("code.secret");
  if (!target) return;
  const range = document.createRange();
  range.selectNodeContents(target);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
});
