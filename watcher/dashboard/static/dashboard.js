// watcher dashboard: progressive enhancement only; every page works without this file.
// - thumbnails that fail (TikTok's signed URLs expire) give way to the placeholder;
// - the filter menus apply on change;
// - an open first page reloads when a newer event is recorded.
"use strict";
(function () {
  var CHECK_EVERY_MS = 10000;

  function markBroken(img) {
    img.classList.add("broken");
  }

  // Image errors do not bubble: listen in the capture phase, from the start.
  document.addEventListener(
    "error",
    function (event) {
      var target = event.target;
      if (target && target.tagName === "IMG") {
        markBroken(target);
      }
    },
    true
  );

  function checkForNews(body) {
    fetch(body.dataset.poll, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data || !data.events) {
          return;
        }
        var newest = data.events.length ? String(data.events[0].id) : "";
        if (newest !== body.dataset.latest) {
          window.location.reload();
        }
      })
      .catch(function () {
        /* the daemon may be restarting: try again at the next tick */
      });
  }

  function init() {
    var images = document.querySelectorAll("img.thumb-img");
    for (var i = 0; i < images.length; i++) {
      var img = images[i];
      if (img.complete && img.naturalWidth === 0) {
        markBroken(img); // failed before this script ran
      }
    }
    var menus = document.querySelectorAll("form.filters select");
    for (var j = 0; j < menus.length; j++) {
      menus[j].addEventListener("change", function (event) {
        event.target.form.submit();
      });
    }
    var body = document.body;
    if (body.dataset.poll) {
      window.setInterval(function () {
        checkForNews(body);
      }, CHECK_EVERY_MS);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
