// The experiment page's export form: the download links carry the chosen options as query
// parameters (a file rather than an inline script, for the Content-Security-Policy).
const form = document.getElementById("export-form");
if (form) {
  form.addEventListener("submit", (event) => event.preventDefault());
  form.querySelectorAll("input[type=checkbox]").forEach((box) => box.addEventListener("change", () => {
    const query = new URLSearchParams();
    form.querySelectorAll("input[type=checkbox]:checked").forEach((b) => query.set(b.name, "1"));
    document.querySelectorAll("[data-export-link]").forEach((link) => {
      link.search = query.toString();
    });
  }));
}
