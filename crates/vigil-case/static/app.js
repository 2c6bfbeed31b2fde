// Vigil review UI: keyboard shortcuts. The pages work without it.
(function () {
  "use strict";
  function typing(e) {
    var t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  function open(box, focusSel) {
    var d = document.getElementById(box);
    if (!d) return;
    d.open = true;
    var f = d.querySelector(focusSel);
    if (f) f.focus();
  }
  var selected = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#queue tbody tr")); }
  function select(i) {
    var r = rows();
    if (!r.length) return;
    selected = Math.max(0, Math.min(r.length - 1, i));
    r.forEach(function (row, j) { row.classList.toggle("selected", j === selected); });
    r[selected].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    var k = e.key;
    var clip = document.getElementById("clip");
    if (k === "?") { var h = document.getElementById("help"); if (h) h.hidden = !h.hidden; e.preventDefault(); return; }
    if (k === "q") { window.location.href = "/queue"; return; }
    if (document.getElementById("queue")) {
      if (k === "j") { select(selected + 1); e.preventDefault(); }
      else if (k === "k") { select(selected - 1); e.preventDefault(); }
      else if (k === "Enter" && selected >= 0) { window.location.href = rows()[selected].dataset.href; }
      return;
    }
    if (k === "c") {
      var c = document.getElementById("confirm-form");
      if (c && window.confirm("Confirm this violation?")) c.submit();
    } else if (k === "d") { open("dismiss-box", "select"); e.preventDefault(); }
    else if (k === "g") { open("downgrade-box", "select"); e.preventDefault(); }
    else if (k === "e") { var p = document.getElementById("plate-input"); if (p) { p.focus(); p.select(); e.preventDefault(); } }
    else if (k === "n") { var n = document.getElementById("next"); if (n) window.location.href = n.href; }
    else if (k === " " && clip) { if (clip.paused) clip.play(); else clip.pause(); e.preventDefault(); }
  });
  document.addEventListener("click", function (e) {
    var row = e.target.closest && e.target.closest("#queue tbody tr");
    if (row && e.target.tagName !== "A") window.location.href = row.dataset.href;
  });
})();
