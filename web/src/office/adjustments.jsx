// adjustments.jsx: the back office's "adjustments" section (to be built).
export function Adjustments() {
  return <h1>Adjustments</h1>;
}
