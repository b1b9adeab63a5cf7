// staff.jsx: the back office's "staff" section (to be built).
export function Staff() {
  return <h1>Staff</h1>;
}
