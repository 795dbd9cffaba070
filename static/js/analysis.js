// Analysis page: every 15 seconds ask whether verdicts have arrived; when they have, fetch the
// figures again (rendered on the server) and swap them in.
(function () {
  const script = document.currentScript;
  const stampUrl = script.dataset.stampUrl;
  const status = document.getElementById("live-status");
  async function check() {
    const figures = document.getElementById("figures");
    try {
      const response = await fetch(stampUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const { stamp } = await response.json();
      if (stamp === figures.dataset.stamp) return;
      const url = new URL(window.location.href);
      url.searchParams.set("partial", "1");
      const page = await fetch(url, { credentials: "same-origin" });
      if (!page.ok) return;
      figures.outerHTML = await page.text();
      status.textContent = `Updated ${new Date().toLocaleTimeString()}: new verdicts.`;
    } catch (error) {
      status.textContent = "Could not check for new verdicts; retrying.";
    }
  }
  setInterval(check, 15000);
})();
