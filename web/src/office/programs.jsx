// programs.jsx: the back office's "programs" section (to be built).
export function Programs() {
  return <h1>Programs</h1>;
}
