// main.jsx: mounts the office page (app.jsx) into index's #app.
import '../lib/style.css';
import { render } from 'preact';
import { App } from './app.jsx';

render(<App />, document.getElementById('app'));
