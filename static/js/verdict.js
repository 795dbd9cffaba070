// The verdict form: sliders that stay summed to 100%, a tie at the top refused before sending,
// a required reason, and the time the judge spent on this page.
import { bindSliders, leaders } from "./probability-sliders.js";
import { hiddenSeconds } from "./hidden-time.js";
import { stayPresent } from "./stay-present.js";

const form = document.querySelector("[data-verdict-form]");
const debateKey = location.pathname;
const lean = form.querySelector("[data-lean]");
const errorBox = form.querySelector("[data-verdict-error]");
const reason = form.querySelector("#reason");
const submit = form.querySelector("[data-submit]");
const labels = Array.from(form.querySelectorAll(".slider"), (slider) => slider.dataset.answer);

// Time on the page survives a reload (and a refused submission) within this tab.
const startKey = `debatelab:verdict-start:${debateKey}`;
const startedAt = Number(sessionStorage.getItem(startKey)) || Date.now();
sessionStorage.setItem(startKey, String(startedAt));

// One client_id per verdict, so a repeated submission is recognised by the server.
const idKey = `debatelab:verdict-id:${debateKey}`;
const clientIdInput = form.querySelector("[data-client-id]");
if (!clientIdInput.value) {
  clientIdInput.value = sessionStorage.getItem(idKey)
    || (crypto.randomUUID ? crypto.randomUUID()
      : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join(""));
}
sessionStorage.setItem(idKey, clientIdInput.value);

function tied(values) {
  return leaders(values).length > 1;
}

// Before the judge touches anything a tie is a hint, not an error.
let touched = false;
form.addEventListener("input", (event) => { if (event.target.matches("[data-prob]")) touched = true; }, { capture: true });

function describe(values) {
  const top = leaders(values);
  if (top.length > 1) {
    lean.textContent = touched ? "Undecided: a verdict must favour one answer. Move a slider."
      : "Move the sliders towards the answer you believe.";
    lean.classList.toggle("tied", touched);
  } else {
    lean.textContent = `You lean towards ${labels[top[0]]} (${values[top[0]]}%).`;
    lean.classList.remove("tied");
  }
}

const sliders = bindSliders(form.querySelectorAll("[data-prob]"), (values) => {
  describe(values);
  if (!tied(values) && errorBox.textContent.startsWith("Undecided")) errorBox.textContent = "";
});

form.addEventListener("submit", (event) => {
  errorBox.textContent = "";
  const values = sliders.values();
  let problem = "";
  if (values.reduce((a, b) => a + b, 0) !== 100) problem = "The probabilities must add up to 100%.";
  else if (tied(values)) problem = "Undecided: a verdict must favour one answer. Move a slider towards the answer you believe.";
  else if (!reason.value.trim()) problem = "Write a short reason for your verdict.";
  if (problem) {
    event.preventDefault();
    errorBox.textContent = problem;
    (problem.startsWith("Write") ? reason : form.querySelector("[data-prob]")).focus();
    return;
  }
  form.querySelector("[data-seconds]").value = ((Date.now() - startedAt) / 1000).toFixed(1);
  const hidden = form.querySelector("[data-hidden-seconds]"); // live verdict forms record time away from the page
  if (hidden) hidden.value = hiddenSeconds().toFixed(1);
  submit.disabled = true;
  submit.textContent = "Submitting…";
});

stayPresent(form.dataset.debate);

form.dataset.ready = "true"; // the browser tests wait for this before they submit
