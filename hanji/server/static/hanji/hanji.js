/* hanji.js: the browser side of Hanji, with no framework dependency.
 *
 *   hanji.callback(applet_id, path, data?, options?) -> Promise<string>
 *     POST to /res/<applet_id>/<path> (a Twisted resource on the reactor).
 *     data: a string (sent as is), FormData / URLSearchParams, or an object
 *     (sent as application/x-www-form-urlencoded, so request.args sees it).
 *     options: {method, headers, json: true (send data as JSON), base}.
 *     Rejects with an Error carrying .status and .body on a non-2xx answer.
 */
(function (global) {
  "use strict";
  var hanji = global.hanji || {};

  function resUrl(appletId, path, base) {
    var clean = String(path || "").replace(/^\/+/, "");
    return (base || "") + "/res/" + encodeURIComponent(appletId) + "/" + clean;
  }

  hanji.callback = function (appletId, path, data, options) {
    options = options || {};
    var init = { method: options.method || "POST", headers: options.headers || {}, credentials: "same-origin" };
    if (data !== undefined && data !== null) {
      if (options.json) {
        init.body = JSON.stringify(data);
        init.headers["Content-Type"] = "application/json";
      } else if (typeof data === "string" || data instanceof FormData || data instanceof URLSearchParams || data instanceof Blob) {
        init.body = data;
      } else {
        init.body = new URLSearchParams(data);
      }
    }
    return fetch(resUrl(appletId, path, options.base), init).then(function (response) {
      return response.text().then(function (text) {
        if (!response.ok) {
          var err = new Error("hanji.callback(" + appletId + ", " + path + "): HTTP " + response.status);
          err.status = response.status;
          err.body = text;
          throw err;
        }
        return text;
      });
    });
  };

  hanji.url = function (appletId, path) { return resUrl(appletId, path); };

  global.hanji = hanji;
})(typeof window !== "undefined" ? window : this);
