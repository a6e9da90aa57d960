"use strict";
// convis inspect: sort and filter the cards already on the page. Reads data-* attributes only; builds no HTML.
(function () {
  var list = document.getElementById("pairs");
  var anchorList = document.getElementById("anchors");
  var cards = Array.prototype.slice.call(list.querySelectorAll("article.pair"));
  var anchors = anchorList ? Array.prototype.slice.call(anchorList.querySelectorAll("article.anchor")) : [];
  var count = document.getElementById("count");
  var state = { sort: "absres", concept: "all", model: "all", unparsed: false, q: "" };

  function pick(el, concept, model) {
    var okConcept = concept === "all" || el.dataset.concept === concept ||
      (el.dataset.concept === "free" && concept !== "free" && el.tagName === "TR");
    var okModel = model === "all" || !el.dataset.model || el.dataset.model === model;
    return okConcept && okModel;
  }

  function sortKey(card) {
    if (state.sort === "key") { return card.dataset.key; }
    var best = -1;
    card.querySelectorAll("[data-absres]").forEach(function (el) {
      var row = el.closest("tr");
      if (el.hidden || (row && row.hidden)) { return; }
      var v = parseFloat(el.dataset[state.sort]);
      if (v > best) { best = v; }
    });
    return best;
  }

  function apply() {
    var shown = 0;
    cards.forEach(function (card) {
      var any = false;
      card.querySelectorAll("tr.answer").forEach(function (row) {
        var ok = pick(row, state.concept, state.model) && (!state.unparsed || row.dataset.unparsed === "1");
        row.hidden = !ok;
        if (ok) { any = true; }
      });
      card.querySelectorAll("li.vs").forEach(function (li) {
        li.hidden = !(state.concept === "all" || state.concept === "free" || li.dataset.concept === state.concept);
      });
      card.hidden = !any || (state.q !== "" && card.dataset.names.indexOf(state.q) < 0);
      if (!card.hidden) { shown += 1; }
    });
    var keyed = cards.map(function (card, i) { return { card: card, key: sortKey(card), i: i }; });
    keyed.sort(function (a, b) {
      if (state.sort === "key") { return a.key < b.key ? -1 : (a.key > b.key ? 1 : a.i - b.i); }
      return (b.key - a.key) || (a.i - b.i);
    });
    keyed.forEach(function (k) { list.appendChild(k.card); });
    anchors.forEach(function (card) {
      var any = false;
      card.querySelectorAll("[data-concept]").forEach(function (cell) {
        var ok = pick(cell, state.concept, state.model);
        cell.hidden = !ok;
        if (ok && cell.classList.contains("cell") && (!state.unparsed || cell.dataset.unparsed === "1")) { any = true; }
      });
      card.hidden = !any || (state.q !== "" && card.dataset.names.indexOf(state.q) < 0);
    });
    count.textContent = shown + " of " + cards.length + " pairs";
  }

  document.querySelectorAll("nav#controls button[data-sort]").forEach(function (button) {
    button.addEventListener("click", function () {
      state.sort = button.dataset.sort;
      document.querySelectorAll("nav#controls button[data-sort]").forEach(function (b) {
        b.classList.toggle("on", b === button);
      });
      apply();
    });
  });
  var concept = document.getElementById("concept");
  concept.addEventListener("change", function () { state.concept = concept.value; apply(); });
  var model = document.getElementById("model");
  if (model) { model.addEventListener("change", function () { state.model = model.value; apply(); }); }
  var unparsed = document.getElementById("unparsed");
  unparsed.addEventListener("change", function () { state.unparsed = unparsed.checked; apply(); });
  var search = document.getElementById("search");
  search.addEventListener("input", function () { state.q = search.value.trim().toLowerCase(); apply(); });
  apply();
}());
