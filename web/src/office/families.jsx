// families.jsx: the back office's "families" section (to be built).
export function Families() {
  return <h1>Families</h1>;
}
