// Renders the API's own description. The script is a file, not inline, so the page's
// Content-Security-Policy can forbid inline scripts.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  // The default sends the spec's URL to validator.swagger.io: the page makes no request
  // outside the API.
  validatorUrl: null,
  docExpansion: "list",
  deepLinking: true,
  defaultModelsExpandDepth: 0,
});
