// messages.jsx: the back office's "messages" section (to be built).
export function Messages() {
  return <h1>Messages</h1>;
}
