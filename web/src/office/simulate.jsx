// simulate.jsx: the back office's "simulate" section (issue 12; to be built).
export function Simulate() {
  return <h1>Simulate</h1>;
}
