/* Draw every interactive figure of the weightscape report from its embedded JSON spec, then
   mark the page ready (<body data-ready="yes">). Runs after plotly.js, inlined above. */
(function () {
  "use strict";
  var body = document.body;
  function ready() {
    body.setAttribute("data-ready", "yes");
  }
  var plots = Array.prototype.slice.call(document.querySelectorAll("div.plot[data-spec]"));
  if (typeof Plotly === "undefined" || plots.length === 0) {
    ready();
    return;
  }
  var options = { responsive: true, displaylogo: false };
  var drawn = plots.map(function (div) {
    var spec = JSON.parse(document.getElementById(div.getAttribute("data-spec")).textContent);
    return Plotly.newPlot(div, spec.data, spec.layout, options).then(function () {
      div.setAttribute("data-ready", "yes");
    });
  });
  Promise.all(drawn).then(ready, function (error) {
    ready();
    throw error;
  });
  // Printing shows the static images; a figure drawn for the screen is resized back after.
  window.addEventListener("afterprint", function () {
    plots.forEach(function (div) {
      Plotly.Plots.resize(div);
    });
  });
})();
