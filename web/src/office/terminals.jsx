// terminals.jsx: the back office's "terminals" section (to be built).
export function Terminals() {
  return <h1>Terminals</h1>;
}
