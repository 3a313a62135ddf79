// "Select all" for the order list's bulk actions. Everything else works without scripts.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("check-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("input[name=order]").forEach(function (box) { box.checked = all.checked; });
  });
});

// The address correction's counters, counted as the ship stage counts: the name's characters,
// and municipality + street + building together without a leading prefecture. The server
// checks again on submit; this only shows the operator where they stand while typing.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("#address-correction form");
  if (!form) return;
  var count = function (text) { return Array.from(text.trim()).length; };
  var value = function (name) { return form.elements[name].value.trim(); };
  var show = function (id, length) {
    var counter = document.getElementById(id);
    var limit = Number(counter.dataset.limit);
    counter.textContent = length + " / " + limit + "文字";
    counter.className = length > limit ? "refused" : "muted";
  };
  var update = function () {
    var prefecture = value("prefecture");
    var city = value("city");
    if (prefecture && city.indexOf(prefecture) === 0) city = city.slice(prefecture.length).trim();
    var line1 = value("line1");
    if (!city && prefecture && line1.indexOf(prefecture) === 0) line1 = line1.slice(prefecture.length).trim();
    var asciiJoin = /[A-Za-z0-9.]$/.test(city) && /^[A-Za-z0-9]/.test(line1) ? 1 : 0;
    show("name-counter", count(value("name")));
    show("lines-counter", count(city) + asciiJoin + count(line1) + count(value("line2")));
  };
  form.addEventListener("input", update);
  form.addEventListener("change", update);
});
