// dashboard.jsx: the back office's "dashboard" section (to be built).
export function Dashboard() {
  return <h1>Dashboard</h1>;
}
