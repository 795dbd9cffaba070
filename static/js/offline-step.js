// Step-by-step offline judging: the probability sliders of one step, always summing to 100%.
import { bindSliders } from "./probability-sliders.js";

const form = document.querySelector("[data-step-form]");
bindSliders(form.querySelectorAll("[data-prob]"));
form.addEventListener("submit", () => {
  form.querySelector("[data-step-submit]").disabled = true;
});
