/*
 * onco-rag chat widget: one script tag adds a chat button and panel to any page.
 *
 *   <script src="http://HOST/static/widget.js" data-endpoint="http://HOST"
 *           data-key="CHAT_KEY" data-title="Ask the literature"></script>
 *
 * Streams answers from POST /api/ask/stream (fetch + ReadableStream: EventSource cannot POST),
 * shows the evidence quotes first, then the draft, then the verified answer with its citations
 * as expandable quotes. No build step, no framework, no CDN, no web fonts; styles live in a
 * shadow root so the host page and the widget cannot restyle each other.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.OncoRagWidget) {
    return;
  }
  var scriptUrl = new URL(script.src, window.location.href);
  var endpoint = (script.getAttribute("data-endpoint") || scriptUrl.origin).replace(/\/+$/, "");
  var key = script.getAttribute("data-key") || "";
  var title = script.getAttribute("data-title") || "Ask the oncology literature";
  var MAX_HISTORY = 6;
  var ABSTAIN = "The indexed documents do not answer this question";

  var CSS = [
    ":host { all: initial; }",
    "* { box-sizing: border-box; }",
    ".root { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;",
    "  font-size: 14px; line-height: 1.45; color: #111827; }",
    ".launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483646;",
    "  width: 56px; height: 56px; border-radius: 50%; border: none; cursor: pointer;",
    "  background: #1d4ed8; color: #fff; display: flex; align-items: center;",
    "  justify-content: center;",
    "  box-shadow: 0 6px 18px rgba(0,0,0,.25); }",
    ".launcher:focus-visible { outline: 3px solid #93c5fd; outline-offset: 2px; }",
    ".panel { position: fixed; right: 20px; bottom: 88px; z-index: 2147483647;",
    "  width: min(420px, calc(100vw - 40px)); height: min(600px, calc(100vh - 120px));",
    "  display: none; flex-direction: column; background: #fff; border-radius: 12px;",
    "  border: 1px solid #e5e7eb; box-shadow: 0 12px 32px rgba(0,0,0,.22); overflow: hidden; }",
    ".panel.open { display: flex; }",
    ".head { display: flex; align-items: center; justify-content: space-between;",
    "  padding: 10px 14px; background: #1d4ed8; color: #fff; font-weight: 600; }",
    ".head button { background: none; border: none; color: #fff; font-size: 20px;",
    "  cursor: pointer; line-height: 1; }",
    ".log { flex: 1; overflow-y: auto; padding: 12px; background: #f9fafb; }",
    ".msg { margin: 0 0 12px; }",
    ".user { text-align: right; }",
    ".user .bubble { display: inline-block; background: #dbeafe; border-radius: 10px;",
    "  padding: 6px 10px; max-width: 90%; text-align: left; white-space: pre-wrap; }",
    ".bot .bubble { background: #fff; border: 1px solid #e5e7eb; border-radius: 10px;",
    "  padding: 8px 10px; }",
    ".status, .rewrite { color: #6b7280; font-size: 12px; margin-bottom: 4px; }",
    ".evidence { border-left: 3px solid #93c5fd; padding: 2px 8px; margin: 4px 0;",
    "  color: #4b5563; font-size: 13px; }",
    ".draft { color: #6b7280; font-style: italic; white-space: pre-wrap; }",
    ".answer { white-space: pre-wrap; }",
    ".cite { border: none; background: none; color: #1d4ed8; font-weight: 600;",
    "  cursor: pointer; padding: 0 1px; font: inherit; }",
    ".cite:hover { text-decoration: underline; }",
    ".citations { margin-top: 8px; }",
    "details.citation { border: 1px solid #e5e7eb; border-radius: 8px; margin: 6px 0;",
    "  padding: 4px 8px; background: #fafafa; }",
    "details.citation summary { cursor: pointer; font-weight: 600; font-size: 13px; }",
    "details.citation.flash { box-shadow: 0 0 0 3px #93c5fd; }",
    "blockquote { margin: 6px 0; padding: 4px 8px; border-left: 3px solid #fbbf24;",
    "  background: #fffbeb; font-size: 13px; }",
    ".where { color: #6b7280; font-size: 12px; }",
    ".badge { display: inline-block; font-size: 11px; border-radius: 999px; padding: 0 6px;",
    "  margin-left: 4px; background: #dcfce7; color: #166534; font-weight: 600; }",
    ".badge.partial, .badge.closest { background: #fef3c7; color: #92400e; }",
    ".badge.unsupported { background: #fee2e2; color: #991b1b; }",
    ".abstain { background: #fffbeb; border: 1px solid #f59e0b; color: #78350f;",
    "  border-radius: 8px; padding: 8px 10px; }",
    ".error { background: #fef2f2; border: 1px solid #ef4444; color: #7f1d1d;",
    "  border-radius: 8px; padding: 8px 10px; }",
    "form { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #e5e7eb; }",
    "textarea { flex: 1; resize: none; height: 42px; border: 1px solid #d1d5db;",
    "  border-radius: 8px; padding: 8px; font: inherit; }",
    "form button { border: none; border-radius: 8px; background: #1d4ed8; color: #fff;",
    "  padding: 0 14px; font: inherit; font-weight: 600; cursor: pointer; }",
    "form button:disabled { opacity: .5; cursor: default; }"
  ].join("\n");

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  // -- DOM ------------------------------------------------------------------------------------

  var host = el("div");
  host.id = "onco-rag-widget";
  var shadow = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = CSS;
  var root = el("div", "root");
  var launcher = el("button", "launcher");
  launcher.type = "button";
  // An inline icon: no emoji or icon font needs to exist on the visitor's machine.
  launcher.innerHTML =
    '<svg width="26" height="26" viewBox="0 0 24 24" aria-hidden="true" fill="none" ' +
    'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">' +
    '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/></svg>';
  launcher.setAttribute("aria-label", title);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("data-role", "launcher");

  var panel = el("div", "panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  var head = el("div", "head");
  head.appendChild(el("span", null, title));
  var close = el("button", null, "×");
  close.type = "button";
  close.setAttribute("aria-label", "Close");
  head.appendChild(close);
  var log = el("div", "log");
  log.setAttribute("aria-live", "polite");
  var form = el("form");
  var input = el("textarea");
  input.placeholder = "Ask about the indexed papers…";
  input.setAttribute("aria-label", "Question");
  input.maxLength = 2000;
  var send = el("button", null, "Ask");
  send.type = "submit";
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(form);
  root.appendChild(launcher);
  root.appendChild(panel);
  shadow.appendChild(style);
  shadow.appendChild(root);

  function mount() {
    document.body.appendChild(host);
  }
  if (document.body) {
    mount();
  } else {
    document.addEventListener("DOMContentLoaded", mount);
  }

  function setOpen(open) {
    panel.classList.toggle("open", open);
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      input.focus();
    }
  }
  launcher.addEventListener("click", function () {
    setOpen(!panel.classList.contains("open"));
  });
  close.addEventListener("click", function () {
    setOpen(false);
  });

  // -- rendering ------------------------------------------------------------------------------

  var history = [];
  var busy = false;

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function where(section, page, docId, ocr) {
    var parts = [];
    if (section && section.length) {
      parts.push(section.join(" › "));
    }
    if (page) {
      parts.push("p. " + page);
    }
    if (docId) {
      parts.push(docId);
    }
    if (ocr) {
      parts.push("text read by OCR from a scan");
    }
    return parts.join(" · ");
  }

  // The verifier's quotes; else the evidence sentences inside the passage; else the passage.
  function quotesOf(c, evidence) {
    if (c.quotes && c.quotes.length) {
      return c.quotes;
    }
    var inside = (evidence || []).filter(function (ev) {
      return ev.chunk_id === c.chunk_id && c.passage.indexOf(ev.text) >= 0;
    });
    return inside.length ? inside : [{ text: c.passage }];
  }

  function citationDetails(c, evidence) {
    var details = el("details", "citation");
    details.setAttribute("data-n", String(c.number));
    var summary = el("summary", null, "[" + c.number + "] " + c.title);
    summary.appendChild(el("span", "badge " + c.verdict, c.verdict));
    details.appendChild(summary);
    var quotes = quotesOf(c, evidence);
    quotes.forEach(function (q) {
      details.appendChild(el("blockquote", null, q.text));
    });
    var place = el("div", "where", where(c.section, c.page, c.doc_id, c.ocr));
    if (c.view_url && c.view_url.charAt(0) === "/") {
      var open = el("a", "open", "open where it stands");
      open.href = endpoint + c.view_url;
      open.target = "_blank";
      open.rel = "noopener";
      place.appendChild(document.createTextNode(" · "));
      place.appendChild(open);
    }
    details.appendChild(place);
    return details;
  }

  function closestDetails(hit) {
    var p = hit.provenance;
    var details = el("details", "citation");
    var summary = el("summary", null, p.title);
    summary.appendChild(el("span", "badge closest", "closest passage"));
    details.appendChild(summary);
    details.appendChild(el("blockquote", null, hit.text));
    details.appendChild(el("div", "where", where(p.section, p.page, p.doc_id, p.format === "pdf-ocr")));
    return details;
  }

  function answerNode(text, cards) {
    var node = el("div", "answer");
    var re = /\[(\d+)\]/g;
    var last = 0;
    var m;
    while ((m = re.exec(text)) !== null) {
      node.appendChild(document.createTextNode(text.slice(last, m.index)));
      var n = m[1];
      var button = el("button", "cite", "[" + n + "]");
      button.type = "button";
      button.setAttribute("aria-label", "Show source " + n);
      button.addEventListener(
        "click",
        (function (num) {
          return function () {
            var card = cards.querySelector('details[data-n="' + num + '"]');
            if (card) {
              card.open = true;
              card.scrollIntoView({ behavior: "smooth", block: "nearest" });
              card.classList.add("flash");
              setTimeout(function () {
                card.classList.remove("flash");
              }, 1500);
            }
          };
        })(n)
      );
      node.appendChild(button);
      last = re.lastIndex;
    }
    node.appendChild(document.createTextNode(text.slice(last)));
    return node;
  }

  function Turn(question) {
    var user = el("div", "msg user");
    user.appendChild(el("div", "bubble", question));
    var bot = el("div", "msg bot");
    this.bubble = el("div", "bubble");
    this.status = el("div", "status", "Searching the documents…");
    this.rewrite = el("div", "rewrite");
    this.evidence = el("div", "evidence-list");
    this.draft = el("div", "draft");
    this.bubble.appendChild(this.rewrite);
    this.bubble.appendChild(this.status);
    this.bubble.appendChild(this.evidence);
    this.bubble.appendChild(this.draft);
    bot.appendChild(this.bubble);
    log.appendChild(user);
    log.appendChild(bot);
    scrollDown();
  }

  Turn.prototype.onEvent = function (type, data) {
    if (type === "status" && data && data.standalone_question) {
      this.rewrite.textContent = "Searched as: " + data.standalone_question;
    } else if (type === "evidence") {
      var list = this.evidence;
      list.textContent = "";
      this.status.textContent = data && data.length
        ? "Evidence found; writing the answer…"
        : "Writing the answer…";
      (data || []).forEach(function (ev) {
        var q = el("div", "evidence", "“" + ev.text + "” — " + ev.title);
        list.appendChild(q);
      });
    } else if (type === "token") {
      this.draft.textContent += data;
    } else if (type === "retry") {
      // The draft repeated the prompt's worked example; a second draft follows.
      this.draft.textContent = "";
      this.status.textContent = "Rewriting the answer…";
    } else if (type === "final") {
      this.final(data);
    } else if (type === "error") {
      this.fail((data && data.message) || "the answer failed");
    }
    scrollDown();
  };

  Turn.prototype.final = function (response) {
    var bubble = this.bubble;
    var rewrite = this.rewrite;
    bubble.textContent = "";
    if (rewrite.textContent) {
      bubble.appendChild(rewrite);
    }
    var cards = el("div", "citations");
    if (response.abstained) {
      var box = el("div", "abstain");
      var said = (response.answer || ABSTAIN).replace(/\.$/, "");
      box.appendChild(el("strong", null, said + "."));
      if (response.abstain_reason) {
        box.appendChild(el("div", "where", response.abstain_reason));
      }
      bubble.appendChild(box);
      (response.passages || []).slice(0, 3).forEach(function (hit) {
        cards.appendChild(closestDetails(hit));
      });
      if (cards.childNodes.length) {
        bubble.appendChild(el("div", "status", "Closest passages:"));
      }
    } else {
      (response.citations || []).forEach(function (c) {
        cards.appendChild(citationDetails(c, response.evidence));
      });
      bubble.appendChild(answerNode(response.answer, cards));
      if (response.quoted) {
        bubble.appendChild(
          el("div", "where", "Quoted from the passage: the drafted answer did not hold up.")
        );
      }
      if (response.verdict && !response.verdict.shown) {
        bubble.appendChild(
          el("div", "where", "No yes/no verdict: the evidence does not decide it clearly.")
        );
      }
    }
    bubble.appendChild(cards);
    this.answer = response.answer;
  };

  Turn.prototype.fail = function (message) {
    this.bubble.textContent = "";
    this.bubble.appendChild(el("div", "error", message));
  };

  // -- streaming ------------------------------------------------------------------------------

  function parseBlock(block) {
    var event = "message";
    var data = [];
    block.split("\n").forEach(function (line) {
      if (!line || line.charAt(0) === ":") {
        return;
      }
      var colon = line.indexOf(":");
      var field = colon < 0 ? line : line.slice(0, colon);
      var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") {
        event = value;
      } else if (field === "data") {
        data.push(value);
      }
    });
    if (!data.length) {
      return null;
    }
    return { event: event, data: data.join("\n") };
  }

  function ask(question) {
    question = (question || "").trim();
    if (!question || busy) {
      return Promise.resolve();
    }
    busy = true;
    send.disabled = true;
    var turn = new Turn(question);
    var headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    if (key) {
      headers.Authorization = "Bearer " + key;
    }
    var body = JSON.stringify({ question: question, history: history.slice(-MAX_HISTORY) });
    return fetch(endpoint + "/api/ask/stream", { method: "POST", headers: headers, body: body })
      .then(function (response) {
        if (!response.ok) {
          return response.text().then(function (text) {
            var message = "HTTP " + response.status;
            try {
              message = JSON.parse(text).error.message || message;
            } catch (e) {
              /* not JSON: keep the status line */
            }
            var retry = response.headers.get("Retry-After");
            throw new Error(message + (retry ? " (retry in " + retry + " s)" : ""));
          });
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) {
              return;
            }
            buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
            var cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              var parsed = parseBlock(buffer.slice(0, cut));
              buffer = buffer.slice(cut + 2);
              if (parsed) {
                var payload = JSON.parse(parsed.data);
                turn.onEvent(parsed.event, payload.data);
              }
            }
            return pump();
          });
        }
        return pump();
      })
      .then(function () {
        if (turn.answer) {
          history.push({ role: "user", content: question });
          history.push({ role: "assistant", content: turn.answer });
        }
      })
      .catch(function (err) {
        turn.fail("Sorry: " + (err && err.message ? err.message : err));
      })
      .then(function () {
        busy = false;
        send.disabled = false;
        scrollDown();
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var q = input.value;
    input.value = "";
    ask(q);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });

  window.OncoRagWidget = {
    open: function () {
      setOpen(true);
    },
    close: function () {
      setOpen(false);
    },
    ask: function (question) {
      setOpen(true);
      return ask(question);
    }
  };
})();
