// Swagger UI for docs/openapi.yaml. A file of its own, not an inline script: the CSP
// allows only script-src 'self'.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
