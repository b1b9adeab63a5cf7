// customers.jsx: the back office's "customers" section (to be built).
export function Customers() {
  return <h1>Customers</h1>;
}
