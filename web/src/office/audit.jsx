// audit.jsx: the back office's "audit" section (to be built).
export function Audit() {
  return <h1>Audit</h1>;
}
