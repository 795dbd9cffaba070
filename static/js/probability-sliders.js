// Probability sliders that always add up to 100%: moving one rescales the others in proportion.
// Values are whole percentages. Used by the judge's feedback form and the verdict form.

export function splitEvenly(count) {
  const base = Math.floor(100 / count);
  return Array.from({ length: count }, (_, i) => base + (i < 100 - base * count ? 1 : 0));
}

// Whole numbers proportional to `weights` that add up to exactly `total` (largest remainders win).
export function apportion(weights, total) {
  const sum = weights.reduce((a, b) => a + b, 0);
  const shares = weights.map((w) => (sum > 0 ? (w * total) / sum : total / weights.length));
  const result = shares.map(Math.floor);
  let left = total - result.reduce((a, b) => a + b, 0);
  const byRemainder = shares.map((s, i) => [s - Math.floor(s), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of byRemainder) {
    if (left <= 0) break;
    result[i] += 1;
    left -= 1;
  }
  return result;
}

// Set values[index] to `value` and rescale the others (in proportion to `base`) so all add up to 100.
export function rebalance(base, index, value) {
  const target = Math.max(0, Math.min(100, Math.round(value)));
  const others = base.filter((_, i) => i !== index);
  const scaled = apportion(others, 100 - target);
  const result = [];
  let k = 0;
  for (let i = 0; i < base.length; i += 1) result.push(i === index ? target : scaled[k++]);
  return result;
}

// Indices of the answers with the highest probability (more than one means a tie).
export function leaders(values) {
  const top = Math.max(...values);
  return values.flatMap((v, i) => (v === top ? [i] : []));
}

// Wire up <input type=range data-prob> elements; each has a sibling <output data-readout>.
// `onChange(values)` runs after every change. Returns {values(), set(values)}.
export function bindSliders(inputs, onChange = () => {}) {
  inputs = Array.from(inputs);
  let values = inputs.map((input) => Number(input.value) || 0);
  if (values.reduce((a, b) => a + b, 0) !== 100) values = splitEvenly(inputs.length);
  let base = values.slice(); // proportions at the start of the current drag or key press

  function show() {
    inputs.forEach((input, i) => {
      input.value = String(values[i]);
      input.setAttribute("aria-valuetext", `${values[i]} percent`);
      const readout = input.closest(".slider")?.querySelector("[data-readout]");
      if (readout) readout.textContent = `${values[i]}%`;
    });
    onChange(values.slice());
  }

  inputs.forEach((input, index) => {
    input.addEventListener("input", () => {
      values = rebalance(base, index, Number(input.value));
      show();
    });
    input.addEventListener("change", () => { base = values.slice(); });
    input.addEventListener("pointerdown", () => { base = values.slice(); });
  });
  show();
  return {
    values: () => values.slice(),
    set(newValues) {
      values = newValues.slice();
      base = values.slice();
      show();
    },
  };
}
