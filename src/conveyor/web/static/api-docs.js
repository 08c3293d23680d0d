// Starts Swagger UI (its files are served by this server, never by a CDN) on the
// OpenAPI document the page names. An inline script would break the page's CSP.
"use strict";

(function () {
  const holder = document.getElementById("swagger-ui");
  if (!holder || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: holder.dataset.openapiUrl,
    domNode: holder,
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // No badge from the public validator: nothing on this page leaves this server.
    validatorUrl: null,
  });
})();
