// cards.jsx: the back office's "cards" section (to be built).
export function Cards() {
  return <h1>Cards</h1>;
}
