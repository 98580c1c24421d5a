/* The app's own script: small progressive enhancements on top of server-rendered pages and htmx. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Move focus to the first field with an error so keyboard and screen-reader users land on it.
  const invalid = document.querySelector(".has-error input, .has-error select, .has-error textarea");
  if (invalid) invalid.focus();
});
