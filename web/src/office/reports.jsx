// reports.jsx: the back office's "reports" section (issue 12; to be built).
export function Reports() {
  return <h1>Reports</h1>;
}
