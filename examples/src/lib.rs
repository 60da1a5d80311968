//! Examples of arca; each lives in its own folder with a README.
