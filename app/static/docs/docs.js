// Swagger UI on this service's own document. A file, not an inline script: the page's
// Content-Security-Policy runs scripts of this origin only.
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: "/docs/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // the default asks validator.swagger.io about the document: nothing leaves this origin
    validatorUrl: null,
    oauth2RedirectUrl: window.location.origin + "/docs/oauth2-redirect.html",
    // the base layout: no top bar, whose box would load documents from anywhere
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
