// imports.jsx: the back office's "imports" section (to be built).
export function Imports() {
  return <h1>Imports</h1>;
}
