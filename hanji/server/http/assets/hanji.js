/* hanji.js: the browser side of Hanji, with no framework dependency.
 *
 *   hanji.callback(applet_id, path, data?, options?) -> Promise<string>
 *     POST to /res/<applet_id>/<path> (a Twisted resource on the reactor).
 *     data: a string (sent as is), FormData / URLSearchParams, or an object
 *     (sent as application/x-www-form-urlencoded, so request.args sees it).
 *     options: {method, headers, json: true (send data as JSON), base}.
 *     Rejects with an Error carrying .status and .body on a non-2xx answer.
 *     Unsafe methods carry X-CSRFToken (the csrftoken cookie, set by Django pages
 *     such as the home page) and the page's Origin, as the server requires.
 *     On a page opened with ?token=… (hanji.show's frame), calls also send it as
 *     "X-Hanji-Token" and websocket URLs carry it: a frame in another
 *     site's page (a notebook on localhost) gets no SameSite cookie.
 *     In such a frame, links to this site clicked in the page carry it too (an
 *     applet's template need not know about tokens). A page opened with a
 *     notebook's one-time ?ticket=… learns the token from <meta name="hanji-token">.
 *
 *   hanji.connect(applet_id, path, options?) -> connection
 *     A websocket to /ws/<applet_id>/<path> that reconnects by itself.
 *     connection.send(msg)       str / ArrayBuffer / Blob as is, anything else as JSON;
 *                                queued while (re)connecting, sent once open.
 *     connection.onmessage = function (data, event) {...}
 *                                data: str, ArrayBuffer, or parsed JSON with {json: true}.
 *     connection.onopen = function (event) {...}
 *     connection.onclose = function (event, reconnecting) {...}
 *     connection.close(code?, reason?)   close for good (no more reconnection).
 *     connection.connected       true while the socket is open.
 *     options: {json: false, reconnect: true, minDelay: 500, maxDelay: 30000 (ms),
 *               maxQueue: 1000, base: "ws://host:port", onmessage, onopen, onclose}.
 *     Reconnects after any close except close() and a normal close (1000) from the
 *     server, waiting minDelay, then twice as long each time, capped at maxDelay.
 *
 *   hanji.wsUrl(applet_id, path) -> "ws(s)://<this host>/ws/<applet_id>/<path>"
 */
(function (global) {
  "use strict";
  var hanji = global.hanji || {};

  // The site's base path, read from this script's own URL, so that a site served
  // under a proxy prefix (e.g. jupyter-server-proxy's /user/x/proxy/8899) works.
  var scriptSrc = (global.document && global.document.currentScript && global.document.currentScript.src) || "";
  var siteBase = scriptSrc.indexOf("/static/hanji/hanji.js") >= 0
    ? new URL(scriptSrc.slice(0, scriptSrc.indexOf("/static/hanji/hanji.js")), global.location.href).pathname.replace(/\/+$/, "")
    : "";
  hanji.base = siteBase;

  function resUrl(appletId, path, base) {
    var clean = String(path || "").replace(/^\/+/, "");
    return (base === undefined ? siteBase : base) + "/res/" + encodeURIComponent(appletId) + "/" + clean;
  }

  // The access token of a page opened with ?token=… (null otherwise).
  var pageToken = null;
  try { pageToken = new URLSearchParams(global.location.search).get("token"); } catch (e) { /* no URL API */ }
  if (!pageToken && global.document) {
    var tokenMeta = global.document.querySelector('meta[name="hanji-token"]');
    pageToken = tokenMeta ? tokenMeta.getAttribute("content") : null;
  }

  // In a frame, a link to this site carries the token as it is followed: the frame
  // may be in another site's page, where the SameSite cookie is not sent.
  var framed = false;
  try { framed = global.top !== global.self; } catch (e) { framed = true; }
  if (pageToken && framed && global.document) {
    global.document.addEventListener("click", function (event) {
      var link = event.target && event.target.closest ? event.target.closest("a[href]") : null;
      if (!link) { return; }
      var target;
      try { target = new URL(link.href, global.location.href); } catch (e) { return; }
      if (target.origin !== global.location.origin || target.searchParams.has("token")) { return; }
      target.searchParams.set("token", pageToken);
      link.href = target.href;
    }, true);
  }

  // Django's CSRF cookie (CSRF_COOKIE_NAME; set hanji.csrfCookieName if renamed).
  hanji.csrfCookieName = hanji.csrfCookieName || "csrftoken";

  function cookie(name) {
    var pairs = (global.document && global.document.cookie) ? global.document.cookie.split(";") : [];
    for (var i = 0; i < pairs.length; i++) {
      var pair = pairs[i].replace(/^\s+/, "");
      if (pair.slice(0, name.length + 1) === name + "=") {
        return decodeURIComponent(pair.slice(name.length + 1));
      }
    }
    return null;
  }

  function hasHeader(headers, name) {
    for (var key in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, key) && key.toLowerCase() === name.toLowerCase()) { return true; }
    }
    return false;
  }

  hanji.callback = function (appletId, path, data, options) {
    options = options || {};
    var init = { method: options.method || "POST", headers: options.headers || {}, credentials: "same-origin" };
    var token = cookie(hanji.csrfCookieName);
    if (token && !/^(GET|HEAD|OPTIONS|TRACE)$/i.test(init.method) && !hasHeader(init.headers, "X-CSRFToken")) {
      init.headers["X-CSRFToken"] = token;
    }
    if (pageToken && !hasHeader(init.headers, "X-Hanji-Token")) {
      init.headers["X-Hanji-Token"] = pageToken;
    }
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

  function wsUrl(appletId, path, base) {
    var loc = global.location;
    var origin = base || ((loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + siteBase);
    var clean = String(path || "").replace(/^\/+/, "");
    var url = origin + "/ws/" + encodeURIComponent(appletId) + "/" + clean;
    if (pageToken) { url += (url.indexOf("?") >= 0 ? "&" : "?") + "token=" + encodeURIComponent(pageToken); }
    return url;
  }

  function wsPayload(message) {
    if (typeof message === "string" || message instanceof ArrayBuffer ||
        ArrayBuffer.isView(message) || (typeof Blob !== "undefined" && message instanceof Blob)) {
      return message;
    }
    return JSON.stringify(message);
  }

  hanji.wsUrl = function (appletId, path) { return wsUrl(appletId, path); };

  hanji.connect = function (appletId, path, options) {
    options = options || {};
    var minDelay = options.minDelay || 500;
    var maxDelay = options.maxDelay || 30000;
    var maxQueue = options.maxQueue || 1000;
    var queue = [];
    var socket = null;
    var timer = null;
    var attempts = 0;
    var finished = false;
    var connection = {
      url: wsUrl(appletId, path, options.base),
      onmessage: options.onmessage || null,
      onopen: options.onopen || null,
      onclose: options.onclose || null
    };

    function open() {
      timer = null;
      var ws = new WebSocket(connection.url);
      ws.binaryType = "arraybuffer";
      socket = ws;
      ws.onopen = function (event) {
        attempts = 0;
        while (queue.length && ws.readyState === 1) { ws.send(queue.shift()); }
        if (connection.onopen) { connection.onopen(event); }
      };
      ws.onmessage = function (event) {
        var data = event.data;
        if (options.json && typeof data === "string") {
          try { data = JSON.parse(data); } catch (e) { /* not JSON: hand over the text */ }
        }
        if (connection.onmessage) { connection.onmessage(data, event); }
      };
      ws.onclose = function (event) {
        if (socket === ws) { socket = null; }
        var again = !finished && options.reconnect !== false && event.code !== 1000;
        if (again) {
          // Exponential back-off with jitter, so that clients do not all return at once.
          var delay = Math.min(maxDelay, minDelay * Math.pow(2, attempts));
          attempts += 1;
          timer = setTimeout(open, delay / 2 + Math.random() * delay / 2);
        } else {
          finished = true;
        }
        if (connection.onclose) { connection.onclose(event, again); }
      };
    }

    connection.send = function (message) {
      if (finished) { throw new Error("hanji.connect(" + appletId + ", " + path + "): the connection is closed for good"); }
      var data = wsPayload(message);
      if (socket && socket.readyState === 1) {
        socket.send(data);
      } else {
        queue.push(data);
        if (queue.length > maxQueue) { queue.shift(); }
      }
    };

    connection.close = function (code, reason) {
      finished = true;
      queue = [];
      if (timer !== null) { clearTimeout(timer); timer = null; }
      if (socket) { socket.close(code || 1000, reason || ""); }
    };

    Object.defineProperty(connection, "connected", {
      get: function () { return socket !== null && socket.readyState === 1; }
    });

    open();
    return connection;
  };

  global.hanji = hanji;
})(typeof window !== "undefined" ? window : this);
