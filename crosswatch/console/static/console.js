// crosswatch console: the live caption check of the edit forms (the server counts by the platform's
// own rule; this only asks it as the person types). Everything works without this file.
"use strict";
(function () {
  var csrf = document.body.getAttribute("data-csrf") || "";
  function check(form) {
    var out = form.querySelector("[data-field=live-check]");
    if (!out) { return; }
    var body = new URLSearchParams();
    body.set("caption", form.elements.caption.value);
    body.set("alt_text", form.elements.alt_text.value);
    fetch("/check/" + form.getAttribute("data-job"), {
      method: "POST", credentials: "same-origin", body: body,
      headers: {"X-CSRF-Token": csrf}
    }).then(function (r) { return r.json(); }).then(function (answer) {
      var counted = answer.length !== null && answer.length !== undefined ? answer.length + " / " + answer.limit : "";
      out.textContent = answer.error ? counted + (counted ? " — " : "") + answer.error : counted;
      out.classList.toggle("over", Boolean(answer.error));
    }).catch(function () { out.textContent = ""; });
  }
  document.querySelectorAll("form[data-action=edit]").forEach(function (form) {
    var timer = null;
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { check(form); }, 250);
    });
  });
})();
