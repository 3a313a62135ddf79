// "Select all" for the order list's bulk actions. Everything else works without scripts.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("check-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("input[name=order]").forEach(function (box) { box.checked = all.checked; });
  });
});
