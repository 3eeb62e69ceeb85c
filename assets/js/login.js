import { api } from './api.js';
import { onSubmit } from './ui.js';

const form = document.getElementById('login-form');
onSubmit(form, async (values) => {
  if (!values.username || !values.password) {
    throw new Error('Enter your user name and password.');
  }
  await api('POST', '/api/auth/login', { username: values.username, password: values.password },
    { redirectOn401: false });
  window.location.assign('/');
});
